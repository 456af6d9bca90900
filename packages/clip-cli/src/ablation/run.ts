import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ValueError, type BackendName } from '@clip-ts/core';
import type { CliIO } from '../cli.js';
import { runDemo, type DemoResult } from '../commands/demo.js';
import { deepMerge } from '../support/deep-merge.js';
import { FULL_DEMO, QUICK_DEMO, type DemoSettings } from '../support/demo-config.js';
import { jsonReplacer, progress } from '../support/format.js';
import { ablationMarkdown } from './table.js';
import { DEMO_VARIANTS, type DemoVariant } from './variants.js';

export interface AblationOptions {
  /** Variants to choose from (default DEMO_VARIANTS). */
  variants?: readonly DemoVariant[];
  /** Names of the variants to run, in this order (default: all). */
  only?: readonly string[];
  /** Apply the variants to QUICK_DEMO (a sliver of data; for tests and smoke runs) instead of FULL_DEMO. */
  quick?: boolean;
  /** Override every variant's epochs (screening at equal epochs). */
  epochs?: number;
  backend?: BackendName;
  /**
   * wasm threads (default: the backend's, 2 in Node). On a loaded machine threaded wasm burns CPU waiting
   * for its threads, so a screen that compares CPU time runs with 1.
   */
  threads?: number;
  /** Directory: one demo run directory per variant, plus ablation.json and ablation.md. */
  out: string;
}

/** One row of the ablation table; every number is read from the variant's demo run. */
export interface AblationRow {
  variant: string;
  note: string;
  /** Best prompt's top-1 on held-out (colour, shape) combinations among all 30 names. */
  heldOutTop1: number;
  heldOutPrompt: string;
  /** Best prompt's top-1 on the same images among only the held-out names. */
  heldOutOnlyTop1: number;
  /** Best prompt's top-1 on seen combinations (the test split) among all 30 names. */
  seenTop1: number;
  seenPrompt: string;
  /** Contrastive loss on the test split with the best checkpoint. */
  testLoss: number;
  epochs: number;
  bestEpoch: number;
  wallSeconds: number;
  /** Process CPU time (user + system) of the variant: a load-independent cost on single-threaded wasm. */
  cpuSeconds: number;
  /** 1-minute load average when the variant finished (how busy the machine was). */
  loadAverage: number;
  backend: string;
  settings: DemoSettings;
}

export interface AblationReport {
  quick: boolean;
  epochs: number | undefined;
  rows: AblationRow[];
}

function pickVariants(all: readonly DemoVariant[], only: readonly string[] | undefined): DemoVariant[] {
  if (only === undefined || only.length === 0) return [...all];
  return only.map((name) => {
    const v = all.find((x) => x.name === name);
    if (!v) throw new ValueError(`--only: unknown variant '${name}'; known: ${all.map((x) => x.name).join(', ')}`);
    return v;
  });
}

/** The best template's top-1 and its name, from a zero-shot report's scores. */
function best(scores: ReadonlyArray<{ template: string; topK: Record<number, number> }>): { top1: number; prompt: string } {
  let out = { top1: NaN, prompt: '' };
  for (const s of scores) {
    const t = s.topK[1] ?? NaN;
    if (!(t <= out.top1)) out = { top1: t, prompt: s.template };
  }
  return out;
}

export function ablationRow(variant: DemoVariant, d: DemoResult, cpuSeconds: number, wallSeconds: number): AblationRow {
  const held = best(d.zeroShot.heldOutAll.scores);
  const seen = best(d.zeroShot.seen.scores);
  return {
    variant: variant.name,
    note: variant.note,
    heldOutTop1: held.top1,
    heldOutPrompt: held.prompt,
    heldOutOnlyTop1: best(d.zeroShot.heldOutOnly.scores).top1,
    seenTop1: seen.top1,
    seenPrompt: seen.prompt,
    testLoss: d.results.test?.loss ?? NaN,
    epochs: d.results.epochs,
    bestEpoch: d.results.bestEpoch,
    wallSeconds,
    cpuSeconds,
    loadAverage: loadavg()[0] ?? NaN,
    backend: d.results.backend,
    settings: d.settings,
  };
}

/**
 * Run the demo once per variant, one after another in this process, and write `out/ablation.json` and
 * `out/ablation.md` after each (an interrupted ablation keeps the rows it finished). Returns the report.
 */
export async function runDemoAblation(opts: AblationOptions, io: CliIO): Promise<AblationReport> {
  const variants = pickVariants(opts.variants ?? DEMO_VARIANTS, opts.only);
  const base = opts.quick ? QUICK_DEMO : FULL_DEMO;
  const report: AblationReport = { quick: opts.quick ?? false, epochs: opts.epochs, rows: [] };
  await mkdir(opts.out, { recursive: true });
  for (const v of variants) {
    const start = opts.epochs === undefined ? base : { ...base, epochs: opts.epochs };
    const settings = deepMerge(start, typeof v.patch === 'function' ? v.patch(start) : v.patch);
    // --epochs wins over a variant's own epochs: the screen compares at equal epochs.
    if (opts.epochs !== undefined) settings.epochs = opts.epochs;
    progress(io, `ablation: variant ${v.name} (${report.rows.length + 1}/${variants.length})`);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const d = await runDemo({ out: join(opts.out, v.name), settings, ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.threads ? { threads: opts.threads } : {}) }, io);
    const cpu = process.cpuUsage(cpu0);
    report.rows.push(ablationRow(v, d, (cpu.user + cpu.system) / 1e6, (performance.now() - t0) / 1000));
    await writeFile(join(opts.out, 'ablation.json'), `${JSON.stringify(report, jsonReplacer, 2)}\n`);
    await writeFile(join(opts.out, 'ablation.md'), ablationMarkdown(report));
  }
  return report;
}
