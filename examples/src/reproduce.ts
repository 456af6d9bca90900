/**
 * Reproduce the reference CLIP experiments on Flickr8k:
 *   finetuned: ViT (google/vit-base-patch16-224-in21k) + DistilBERT (distilbert-base-uncased), both trained;
 *   frozen:    the same towers frozen, only the projection heads and the temperature train.
 * Reference settings: projection 256 + LayerNorm, Adam lr 1e-4, batch 32, ≤ 30 epochs, ReduceLROnPlateau
 * (0.5, 2), EarlyStopping(5), best checkpoint by val loss, captions to 40 tokens, images resized to 224 with
 * OpenAI CLIP mean/std, seed 42. See docs/reproduction.md.
 *
 *   npm run reproduce-finetuned -w examples -- --data DIR --vit DIR --bert DIR
 *   npm run reproduce-finetuned -w examples -- --dry-run
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { BACKEND_NAMES, ValueError, type BackendName } from '@clip-ts/core';
import { resolvePretrained } from '@clip-ts/encoders/node';
import { formatResultsTable, runExperiment, type ExperimentConfigInput, type Results } from '@clip-ts/train';
import { chooseBackend, isMain, runAsScript, type ExampleIO } from './common.js';
import { writeMiniFlickr8k } from './mini-data.js';
import { writeTinyDistilBert, writeTinyViT } from './tiny-hf.js';

export type Mode = 'finetuned' | 'frozen';

/** The reference's reported test metrics (in-batch, batch 32, image→text). */
export const REFERENCE = {
  finetuned: { top1: 0.804, top5: 0.979 },
  frozen: { top1: 0.572, top5: 0.931 },
} as const;

export interface ReproduceOptions {
  mode: Mode;
  /** Flickr8k root (captions.txt, images, Flickr_8k.*Images.txt). */
  data: string;
  /** google/vit-base-patch16-224-in21k: a local HF directory or a Hub id (downloaded once into the HF cache). */
  vit: string;
  /** distilbert-base-uncased: a local HF directory (with tokenizer.json) or a Hub id. */
  bert: string;
  out: string;
  backend: BackendName;
  epochs?: number;
  /** Miniature run: tiny generated data and towers, 1 epoch of 2 steps, `imageSize` 32. */
  dryRun?: boolean;
}

/** The reference experiment as a clip-ts config. */
export function referenceConfig(o: ReproduceOptions, overrides: { imageSize?: number; batchSize?: number; epochs?: number } = {}): ExperimentConfigInput {
  return {
    seed: 42,
    backend: o.backend,
    model: {
      vision: { pretrained: o.vit },
      text: { pretrained: o.bert },
      projectionDim: 256,
      head: 'linear',
      freeze: o.mode === 'frozen' ? 'towers' : 'none',
    },
    data: {
      dataset: { kind: 'flickr8k', root: o.data },
      tokenizer: o.bert,
      maxLength: 40,
      batchSize: overrides.batchSize ?? 32,
      imageSize: overrides.imageSize ?? 224,
      captionPick: 'random',
    },
    optim: { name: 'adam', lr: 1e-4 },
    schedule: {
      epochs: overrides.epochs ?? o.epochs ?? 30,
      reduceLROnPlateau: { factor: 0.5, patience: 2 },
      earlyStopping: { patience: 5 },
    },
    output: { runDir: o.out },
  };
}

/** Our numbers beside the reference's. */
export function comparisonTable(mode: Mode, r: Results): string {
  const ref = REFERENCE[mode];
  const ours = (k: 'top1' | 'top5') => (r.test?.topK[k] !== undefined ? `${((r.test.topK[k] as number) * 100).toFixed(1)}%` : 'n/a');
  return [
    `| ${mode} (test, in-batch of ${r.test?.batchSize ?? 32}) | reference | clip-ts |`,
    '| --- | ---: | ---: |',
    `| top-1 | ${(ref.top1 * 100).toFixed(1)}% | ${ours('top1')} |`,
    `| top-5 | ${(ref.top5 * 100).toFixed(1)}% | ${ours('top5')} |`,
    '',
  ].join('\n');
}

export async function reproduce(o: ReproduceOptions, io: ExampleIO): Promise<Results> {
  let opts = o;
  let sizes: { imageSize?: number; batchSize?: number; epochs?: number } = {};
  let work: string | undefined;
  if (o.dryRun) {
    work = await mkdtemp(join(tmpdir(), `clip-reproduce-${o.mode}-`));
    io.stderr(`dry run: miniature Flickr8k and tiny HF towers in ${work}\n`);
    const data = join(work, 'flickr8k');
    await writeMiniFlickr8k(data, { train: 8, dev: 4, test: 4, imageSize: 48 });
    opts = { ...o, data, vit: await writeTinyViT(join(work, 'vit-tiny'), 32), bert: await writeTinyDistilBert(join(work, 'distilbert-tiny')) };
    sizes = { imageSize: 32, batchSize: 4, epochs: 1 };
  }
  try {
    return await train(opts, sizes, io, o.dryRun === true);
  } finally {
    // The generated data and towers are scratch; the run directory (opts.out) is what the user keeps.
    if (work) await rm(work, { recursive: true, force: true });
  }
}

async function train(
  opts: ReproduceOptions,
  sizes: { imageSize?: number; batchSize?: number; epochs?: number },
  io: ExampleIO,
  dryRun: boolean,
): Promise<Results> {
  // Hub ids resolve to a cached snapshot directory (downloaded on first use); local directories stay as they are.
  opts = { ...opts, vit: await resolvePretrained(opts.vit), bert: await resolvePretrained(opts.bert) };
  const backend = await chooseBackend(opts.backend, io, dryRun);
  const config = referenceConfig({ ...opts, backend }, sizes);
  // runExperiment writes the tokenizer and preprocessing into best/ and last/, so `clip eval/zeroshot` run on them as is.
  return runExperiment(config, { runDir: opts.out, io });
}

export async function main(argv: string[], io: ExampleIO): Promise<number> {
  const program = new Command('reproduce')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .argument('<mode>', 'finetuned | frozen')
    .option('--data <dir>', 'Flickr8k directory', process.env.FLICKR8K_DIR ?? 'data/flickr8k')
    .option('--vit <dir|id>', 'image tower: HF directory or Hub id', process.env.VIT_DIR ?? 'google/vit-base-patch16-224-in21k')
    .option('--bert <dir|id>', 'text tower (with tokenizer.json): HF directory or Hub id', process.env.BERT_DIR ?? 'distilbert-base-uncased')
    .option('--out <dir>', 'run directory (default runs/reproduce-<mode>)')
    .option('--backend <name>', `one of ${BACKEND_NAMES.join(', ')}`, 'tensorflow-gpu')
    .option('--epochs <n>', 'maximum epochs (reference: 30)')
    .option('--dry-run', 'a couple of steps on generated miniature data and tiny towers (checks the whole path)');
  let parsed: { mode: string; opts: Record<string, string | boolean | undefined> };
  try {
    program.parse(argv, { from: 'user' });
    parsed = { mode: program.args[0] as string, opts: program.opts() };
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  if (parsed.mode !== 'finetuned' && parsed.mode !== 'frozen') throw new ValueError(`mode must be finetuned or frozen, got '${parsed.mode}'`);
  const backend = String(parsed.opts.backend);
  if (!(BACKEND_NAMES as readonly string[]).includes(backend)) throw new ValueError(`--backend: expected one of ${BACKEND_NAMES.join(', ')}`);
  const epochs = parsed.opts.epochs === undefined ? undefined : Number(parsed.opts.epochs);
  if (epochs !== undefined && !(Number.isInteger(epochs) && epochs > 0)) throw new ValueError('--epochs must be a positive integer');
  const mode = parsed.mode;
  if (parsed.opts.dryRun && parsed.opts.out === undefined) {
    // The default dry-run directory holds nothing but an earlier dry run: start it afresh.
    await rm(`runs/reproduce-${mode}-dry-run`, { recursive: true, force: true });
  }
  const results = await reproduce(
    {
      mode,
      data: String(parsed.opts.data),
      vit: String(parsed.opts.vit),
      bert: String(parsed.opts.bert),
      out: String(parsed.opts.out ?? `runs/reproduce-${mode}${parsed.opts.dryRun ? '-dry-run' : ''}`),
      backend: backend as BackendName,
      epochs,
      dryRun: parsed.opts.dryRun === true,
    },
    io,
  );
  io.stdout(`${formatResultsTable(results)}\n\n${comparisonTable(mode, results)}`);
  return 0;
}

if (isMain(import.meta.url)) runAsScript(main);
