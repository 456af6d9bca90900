import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, parseBackendName, type BackendName } from '@clip-ts/core';
import { createShapes } from '@clip-ts/data';
import { CLIP, toTensors } from '@clip-ts/encoders';
import { embedClassificationSet, formatResultsTable, resetRunDir, restrictClasses, runExperiment, scoreTemplates, type Results, type ZeroShotReport } from '@clip-ts/train';
import type { CliIO } from '../cli.js';
import { demoExperimentConfig, demoScoredCheckpoint, DEMO_TEMPLATES, FULL_DEMO, QUICK_DEMO, type DemoSettings } from '../support/demo-config.js';
import { markdownTable, pct, progress, writeJson, jsonReplacer } from '../support/format.js';
import { THREADS_HELP, backendArg, positiveInt, threadsArg } from '../support/options.js';

export interface DemoOptions {
  quick?: boolean;
  backend?: BackendName;
  threads?: number;
  out: string;
  epochs?: number;
  /** Programmatic overrides of the demo's settings (sizes, lr, ...); the CLI exposes only --epochs. */
  settings?: Partial<DemoSettings>;
}

export interface DemoZeroShot {
  /** Held-out (colour, shape) combinations, classified among all 30 colour–shape names. */
  heldOutAll: ZeroShotReport;
  /** The same images among the held-out names only. */
  heldOutOnly: ZeroShotReport;
  /** Seen combinations (the test split) among all 30 names, for comparison. */
  seen: ZeroShotReport;
}

export interface DemoResult {
  results: Results;
  zeroShot: DemoZeroShot;
  /** Best held-out top-1 (among all names) divided by chance. */
  heldOutTimesChance: number;
  settings: DemoSettings;
  wallSeconds: number;
}


/**
 * The offline demo: train a small CLIP from scratch on the synthetic shapes set, print the results
 * table, then zero-shot classify images of (colour, shape) combinations never seen in training with
 * three prompt variants, next to chance level. Writes `out/` (results.json, history.csv, loss plot,
 * best/ and last/ checkpoints with their tokenizer and preprocessing).
 */
export async function runDemo(opts: DemoOptions, io: CliIO): Promise<DemoResult> {
  const started = performance.now();
  const settings: DemoSettings = { ...(opts.quick ? QUICK_DEMO : FULL_DEMO), ...opts.settings };
  if (opts.epochs !== undefined) settings.epochs = opts.epochs;
  // A rerun replaces only what a run writes; files the user added to the directory stay.
  await resetRunDir(opts.out, { what: 'a demo run directory' });
  const backend = opts.backend ?? parseBackendName(process.env.CLIP_BACKEND ?? 'auto', 'CLIP_BACKEND');
  const config = { ...demoExperimentConfig(settings, opts.out, backend), threads: opts.threads };
  progress(
    io,
    `clip demo${opts.quick ? ' --quick' : ''}: training a CLIP from scratch on synthetic shapes ` +
      `(${settings.shapes.trainSize} training images, ${settings.epochs} epoch(s), towers ${settings.layers}×${settings.hidden})`,
  );
  const results = await runExperiment(config, { runDir: opts.out, io });
  if (results.interrupted) throw new ConfigError('the demo was interrupted');

  progress(io, 'zero-shot: embedding held-out and seen combinations with the best checkpoint');
  const shapes = createShapes(settings.shapes);
  const ckpt = await CLIP.fromPretrained(demoScoredCheckpoint(config, opts.out));
  let zeroShot: DemoZeroShot;
  try {
    const tokenize = (texts: string[]) => toTensors(ckpt.tokenizer.encode(texts, ckpt.maxLength));
    const heldOutSet = shapes.zeroShot();
    const held = await embedClassificationSet(ckpt.model, ckpt.imageProcessor, heldOutSet);
    const seen = await embedClassificationSet(ckpt.model, ckpt.imageProcessor, shapes.test);
    const heldNames = shapes.heldOutCombos.map((c) => c.name);
    zeroShot = {
      heldOutAll: scoreTemplates(ckpt.model, tokenize, heldOutSet.classNames, held, DEMO_TEMPLATES, [1, 3, 5]),
      heldOutOnly: scoreTemplates(ckpt.model, tokenize, heldNames, restrictClasses(held, heldOutSet.classNames, heldNames), DEMO_TEMPLATES, [1, 3]),
      seen: scoreTemplates(ckpt.model, tokenize, shapes.test.classNames, seen, DEMO_TEMPLATES, [1, 3, 5]),
    };
  } finally {
    ckpt.dispose();
  }
  const bestHeld = Math.max(...zeroShot.heldOutAll.scores.map((s) => s.topK[1] ?? 0));
  const demo: DemoResult = {
    results,
    zeroShot,
    heldOutTimesChance: bestHeld / zeroShot.heldOutAll.chance,
    settings,
    wallSeconds: (performance.now() - started) / 1000,
  };
  // results.json gains the zero-shot section (the trainer wrote the rest).
  const resultsFile = join(opts.out, 'results.json');
  const written = JSON.parse(await readFile(resultsFile, 'utf8')) as Record<string, unknown>;
  await writeFile(
    resultsFile,
    `${JSON.stringify({ ...written, demo: { zeroShot: stripDetail(zeroShot), heldOutTimesChance: demo.heldOutTimesChance, settings, wallSeconds: demo.wallSeconds } }, jsonReplacer, 2)}\n`,
  );
  return demo;
}

function stripDetail(z: DemoZeroShot): Record<string, unknown> {
  const one = (r: ZeroShotReport) => ({
    images: r.images,
    classes: r.classNames.length,
    chance: r.chance,
    scores: r.scores,
    perClassAccuracy: Object.fromEntries(r.classNames.map((c, i) => [c, r.detail.perClassAccuracy[i]])),
  });
  return { heldOutAll: one(z.heldOutAll), heldOutOnly: one(z.heldOutOnly), seen: one(z.seen) };
}

export function formatDemo(d: DemoResult, out: string): string {
  const z = d.zeroShot;
  const rows = DEMO_TEMPLATES.map((t, i) => {
    const a = z.heldOutAll.scores[i]?.topK ?? {};
    const b = z.heldOutOnly.scores[i]?.topK ?? {};
    const s = z.seen.scores[i]?.topK ?? {};
    return [JSON.stringify(t).slice(1, -1), pct(a[1] ?? NaN), pct(a[5] ?? NaN), pct(b[1] ?? NaN), pct(s[1] ?? NaN)];
  });
  const table = markdownTable(
    [
      'prompt',
      `unseen combos: top-1 of ${z.heldOutAll.classNames.length} (chance ${pct(z.heldOutAll.chance, 1)})`,
      `top-5 (chance ${pct(Math.min(1, 5 * z.heldOutAll.chance), 1)})`,
      `top-1 among the ${z.heldOutOnly.classNames.length} unseen names (chance ${pct(z.heldOutOnly.chance, 1)})`,
      `seen combos: top-1 of ${z.seen.classNames.length} (chance ${pct(z.seen.chance, 1)})`,
    ],
    rows,
  );
  const verdict =
    `Best held-out zero-shot top-1 is ${d.heldOutTimesChance.toFixed(1)}× chance ` +
    `(${z.heldOutAll.images} images of ${z.heldOutOnly.classNames.length} colour–shape combinations never shown in training: ${z.heldOutOnly.classNames.join(', ')}).`;
  return [
    `## Results (test split, best epoch ${d.results.bestEpoch}, backend ${d.results.backend})`,
    '',
    formatResultsTable(d.results),
    '',
    '## Zero-shot on held-out (colour, shape) combinations',
    '',
    table.trimEnd(),
    '',
    verdict,
    '',
    `Wrote ${out}/: results.json, history.csv, loss.svg/loss.png, best/ and last/ checkpoints (${d.wallSeconds.toFixed(0)} s).`,
    `Try: clip zeroshot --checkpoint ${out}/best --dataset shapes --template "a photo of a {}."`,
    '',
  ].join('\n');
}

export function registerDemo(program: Command, io: CliIO): void {
  program
    .command('demo')
    .description('offline demo: train a small CLIP from scratch on synthetic shapes, then zero-shot on unseen colour–shape combinations')
    .option('--quick', 'a shortened run (under a minute; accuracy not meaningful)')
    .option('--backend <name>', 'tfjs backend (default: $CLIP_BACKEND or auto = fastest available)', backendArg)
    .option('--threads <n>', THREADS_HELP, threadsArg)
    .option('--out <dir>', 'run directory (a rerun replaces the files an earlier demo run wrote there, nothing else)', 'runs/demo')
    .option('--epochs <n>', 'override the number of epochs', positiveInt('--epochs'))
    .option('--json', 'print the result as one JSON object on stdout instead of tables')
    .action(async (o: DemoOptions & { json?: boolean }) => {
      const d = await runDemo(o, io);
      if (o.json) writeJson(io, { ...d, zeroShot: stripDetail(d.zeroShot) });
      else io.stdout(formatDemo(d, o.out));
    });
}
