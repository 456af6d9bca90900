import { mkdir } from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import { describeBackend, initBackend, type BackendName } from '@clip-ts/core';
import { CLIP, toTensors } from '@clip-ts/encoders';
import type { ClassificationDataset } from '@clip-ts/data';
import {
  DEFAULT_SHOTS,
  embedClassificationSet,
  kShotProbe,
  linearProbe,
  scoreTemplates,
  writeKShotPlot,
  type KShotPoint,
  type LabelledEmbeddings,
  type LambdaScore,
} from '@clip-ts/train';
import type { CliIO } from '../cli.js';
import { buildProbeSplits } from '../support/probe-datasets.js';
import { markdownTable, pct, progress, writeJson } from '../support/format.js';
import { THREADS_HELP, backendArg, threadsArg, positiveInt, probeDatasetArg, templateArg, zodArg, type ProbeDatasetKind } from '../support/options.js';

export interface ProbeOptions {
  checkpoint: string;
  dataset: ProbeDatasetKind;
  root?: string;
  template?: string[];
  /** k-shot sizes (labelled images per class); empty skips k-shot. */
  shots?: number[];
  repeats?: number;
  seed?: number;
  /** λ grid for the full probe (default: the library's). */
  lambda?: number[];
  /** Where kshot.svg / kshot.png go; no plot without it. */
  plotDir?: string;
  batchSize?: number;
  backend?: BackendName;
  threads?: number;
}

export interface ProbeRow {
  method: string;
  top1: number;
  top5?: number;
  /** Standard deviations over k-shot draws. */
  top1Std?: number;
  top5Std?: number;
}

export interface ProbeCommandResult {
  checkpoint: string;
  dataset: string;
  backend: string;
  classNames: string[];
  trainImages: number;
  testImages: number;
  chance: { top1: number; top5?: number };
  zeroShot: { template: string; top1: number; top5?: number };
  probe: { lambda: number; validation: LambdaScore[]; top1: number; top5?: number };
  kShot: Array<{ shots: number; images: number; repeats: number; lambda: number; top1: { mean: number; std: number; runs: number[] }; top5?: { mean: number; std: number; runs: number[] } }>;
  /** The one table: chance, zero-shot, full probe, k-shot probes. */
  rows: ProbeRow[];
  plot?: { svg: string; png: string };
}

async function embed(ckpt: CLIP, ds: ClassificationDataset, batchSize: number, io: CliIO): Promise<LabelledEmbeddings> {
  progress(io, `embedding ${ds.length} images of ${ds.name}/${ds.split}`);
  let last = 0;
  return embedClassificationSet(ckpt.model, ckpt.imageProcessor, ds, {
    batchSize,
    onBatch: (done, total) => {
      if (done - last >= 1000 || done === total) {
        progress(io, `  ${done}/${total}`);
        last = done;
      }
    },
  });
}

/**
 * Linear probe vs zero-shot for one checkpoint: embed train and test once with the frozen image tower,
 * score zero-shot on test, fit the full-train probe (λ chosen on held-out train) and k-shot probes on the
 * same embeddings. Owns and frees every tensor it makes.
 */
export async function runProbe(opts: ProbeOptions, io: CliIO): Promise<ProbeCommandResult> {
  const backend = await initBackend(opts.backend, { threads: opts.threads });
  progress(io, describeBackend(backend));
  const splits = buildProbeSplits(opts.dataset, opts.root);
  const classNames = [...splits.test.classNames];
  const C = classNames.length;
  const templates = opts.template && opts.template.length > 0 ? opts.template : ['a photo of a {}.'];
  const ckpt = await CLIP.fromPretrained(opts.checkpoint);
  let train: LabelledEmbeddings;
  let test: LabelledEmbeddings;
  let zs: ProbeCommandResult['zeroShot'];
  try {
    train = await embed(ckpt, splits.train, opts.batchSize ?? 64, io);
    test = await embed(ckpt, splits.test, opts.batchSize ?? 64, io);
    const report = scoreTemplates(ckpt.model, (texts) => toTensors(ckpt.tokenizer.encode(texts, ckpt.maxLength)), classNames, test, templates, [1, 5]);
    const s = report.scores[report.scores.length - 1];
    zs = { template: s?.template ?? '', top1: s?.topK[1] ?? Number.NaN, ...(C >= 5 ? { top5: s?.topK[5] ?? Number.NaN } : {}) };
  } finally {
    ckpt.dispose();
  }
  progress(io, `linear probe: ${train.count} train, ${test.count} test embeddings, ${C} classes`);
  const probe = linearProbe(train, test, C, { ...(opts.lambda ? { lambdas: opts.lambda } : {}), seed: opts.seed ?? 0 });
  const shots = opts.shots ?? [...DEFAULT_SHOTS];
  const repeats = opts.repeats ?? 5;
  progress(io, `k-shot probes (${shots.join(', ')} per class, ${repeats} draws each, λ = ${probe.lambda})`);
  const points: KShotPoint[] = kShotProbe(train, test, C, { shots, repeats, seed: opts.seed ?? 0, lambda: probe.lambda });

  const chance = { top1: 1 / C, ...(C >= 5 ? { top5: 5 / C } : {}) };
  const rows: ProbeRow[] = [
    { method: 'chance', ...chance },
    { method: `zero-shot (${zs.template})`, top1: zs.top1, ...(zs.top5 === undefined ? {} : { top5: zs.top5 }) },
    { method: `linear probe (${train.count} train images, λ = ${probe.lambda})`, top1: probe.topK[1] ?? Number.NaN, ...(probe.topK[5] === undefined ? {} : { top5: probe.topK[5] }) },
    ...points.map((p) => ({
      method: `${p.shots}-shot probe (${repeats} draws)`,
      top1: p.topK[1]?.mean ?? Number.NaN,
      top1Std: p.topK[1]?.std ?? Number.NaN,
      ...(p.topK[5] ? { top5: p.topK[5].mean, top5Std: p.topK[5].std } : {}),
    })),
  ];
  const result: ProbeCommandResult = {
    checkpoint: opts.checkpoint,
    dataset: `${splits.test.name}`,
    backend: backend.name,
    classNames,
    trainImages: train.count,
    testImages: test.count,
    chance,
    zeroShot: zs,
    probe: { lambda: probe.lambda, validation: probe.validation, top1: probe.topK[1] ?? Number.NaN, ...(probe.topK[5] === undefined ? {} : { top5: probe.topK[5] }) },
    kShot: points.map((p) => ({ shots: p.shots, images: p.images, repeats, lambda: probe.lambda, top1: p.topK[1] ?? { mean: Number.NaN, std: Number.NaN, runs: [] }, ...(p.topK[5] ? { top5: p.topK[5] } : {}) })),
    rows,
  };
  if (opts.plotDir !== undefined && points.length > 0) {
    await mkdir(opts.plotDir, { recursive: true });
    result.plot = await writeKShotPlot(opts.plotDir, {
      points,
      zeroShot: zs.top1,
      fullProbe: result.probe.top1,
      chance: chance.top1,
      title: `Zero-shot vs k-shot linear probe (${result.dataset})`,
    });
    progress(io, `plot: ${result.plot.svg}, ${result.plot.png}`);
  }
  return result;
}

function cell(mean: number | undefined, std: number | undefined): string {
  if (mean === undefined) return '–';
  return std === undefined ? pct(mean) : `${pct(mean)} ± ${(100 * std).toFixed(1)}`;
}

/** The one table: chance, zero-shot, full probe and k-shot probes side by side. */
export function formatProbe(r: ProbeCommandResult): string {
  const head = `Linear probe vs zero-shot on ${r.dataset}: ${r.trainImages} train / ${r.testImages} test images, ${r.classNames.length} classes\n\n`;
  const table = markdownTable(
    ['method', 'top-1', 'top-5'],
    r.rows.map((row) => [row.method, cell(row.top1, row.top1Std), cell(row.top5, row.top5Std)]),
  );
  const sweep = r.probe.validation.length
    ? `\nλ chosen on held-out train images (top-1 there): ${r.probe.validation.map((v) => `${v.lambda}: ${pct(v.accuracy)}`).join(', ')}\n`
    : '';
  return `${head}${table}${sweep}${r.plot ? `\nk-shot plot: ${r.plot.svg}, ${r.plot.png}\n` : ''}`;
}

const shotsArg = zodArg<number[]>(
  '--shots',
  z
    .string()
    .transform((s) => (s.trim() === 'none' ? [] : s.split(',').map((x) => Number(x.trim()))))
    .pipe(z.array(z.number().int('must be integers').positive('must be positive'))),
);

const lambdaArg = (value: string, previous: number[] | undefined): number[] => [
  ...(previous ?? []),
  zodArg('--lambda', z.coerce.number().nonnegative('must be ≥ 0').finite('must be finite'))(value),
];

const seedArg = zodArg('--seed', z.coerce.number().int('must be an integer').nonnegative('must be ≥ 0'));

export function registerProbe(program: Command, io: CliIO): void {
  program
    .command('probe')
    .description('linear probe (logistic regression on frozen image embeddings) and k-shot probes vs zero-shot, in one table')
    .requiredOption('--checkpoint <dir|id>', 'checkpoint: a directory (a run\'s best/, an HF CLIP repo), a Hub id (org/name) or an http(s) URL')
    .requiredOption('--dataset <kind>', 'cifar10 | cifar100 | imagefolder (ROOT/train, ROOT/test) | csv (split column; caption = class) | shapes', probeDatasetArg)
    .option('--root <dir>', 'dataset directory')
    .option('--template <text>', 'zero-shot prompt template with {}; repeat for an ensemble (default "a photo of a {}.")', templateArg)
    .option('--shots <list>', 'k-shot sizes, comma-separated, or "none"', shotsArg, [...DEFAULT_SHOTS])
    .option('--repeats <n>', 'seeded draws per k-shot size', positiveInt('--repeats'), 5)
    .option('--seed <n>', 'seed of the held-out and k-shot draws', seedArg, 0)
    .option('--lambda <x>', 'L2 strength of the probe; repeat for a grid (default 1e-6 … 1, chosen on held-out train)', lambdaArg)
    .option('--plot-dir <dir>', 'write the k-shot figure there (kshot.svg, kshot.png)')
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--backend <name>', 'tfjs backend (default: $CLIP_BACKEND or auto)', backendArg)
    .option('--threads <n>', THREADS_HELP, threadsArg)
    .option('--json', 'print the result as one JSON object on stdout')
    .action(async (o: ProbeOptions & { json?: boolean }) => {
      const result = await runProbe(o, io);
      if (o.json) writeJson(io, result);
      else io.stdout(formatProbe(result));
    });
}
