import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { ValueError, type CaptionTokenizer } from '@clip-ts/core';
import {
  createShapes,
  loadCaptionCsvSplits,
  loadCifar10,
  loadCifar100,
  loadFlickr8k,
  loadImageFolder,
  loadSvhn,
  SVHN_SPLITS,
  splitStats,
  type ImageDataset,
  type SplitStats,
} from '@clip-ts/data';
import { loadTokenizer, loadTokenizerFiles } from '@clip-ts/encoders/node';
import type { CliIO } from '../cli.js';
import { DEMO_SHAPES } from '../support/datasets.js';
import { markdownTable, num, writeJson } from '../support/format.js';
import { positiveInt, zodArg } from '../support/options.js';

export const STATS_DATASETS = ['flickr8k', 'cifar10', 'cifar100', 'imagefolder', 'csv', 'shapes', 'svhn'] as const;
export type StatsDatasetKind = (typeof STATS_DATASETS)[number];

export interface DataStatsOptions {
  dataset: StatsDatasetKind;
  root?: string;
  /** tokenizer.json, or a directory holding one. */
  tokenizer?: string;
  /** Captions longer than this are counted as truncated (default 40, the reference's choice). */
  maxLength?: number;
  /** CIFAR-100 label set. */
  labels?: 'fine' | 'coarse';
}

export interface DataStatsResult {
  dataset: StatsDatasetKind;
  root: string | null;
  tokenizer: string | null;
  maxLength: number;
  splits: SplitStats[];
  /** Duplicates and other problems the loaders reported. */
  warnings: string[];
}

function needRoot(o: DataStatsOptions): string {
  if (!o.root) throw new ValueError(`--dataset ${o.dataset} needs --root DIR`);
  return o.root;
}

/** Every split of the dataset, as loaded by @clip-ts/data (no image is decoded). */
function splitsOf(o: DataStatsOptions, onWarning: (m: string) => void): ImageDataset[] {
  switch (o.dataset) {
    case 'flickr8k': {
      const f = loadFlickr8k(needRoot(o), { onWarning });
      return [f.train, f.val, f.test];
    }
    case 'cifar10': {
      const c = loadCifar10(needRoot(o));
      return [c.train, c.test];
    }
    case 'cifar100': {
      const c = loadCifar100(needRoot(o), { labels: o.labels ?? 'fine' });
      return [c.train, c.test];
    }
    case 'imagefolder':
      return [loadImageFolder(needRoot(o), { onWarning })];
    case 'csv':
      return Object.values(loadCaptionCsvSplits(needRoot(o), { onWarning }));
    case 'shapes': {
      // The set the demo trains on, so the numbers describe it; it is generated, --root is not used.
      const s = createShapes(DEMO_SHAPES);
      return [s.train, s.val, s.test, s.heldOut];
    }
    case 'svhn': {
      // Each split is its own file and extra_32x32.mat is often not downloaded: describe the files present.
      const root = needRoot(o);
      const present = SVHN_SPLITS.filter((split) => existsSync(path.join(root, `${split}_32x32.mat`)));
      if (present.length === 0) throw new ValueError(`--dataset svhn: none of ${SVHN_SPLITS.map((s) => `${s}_32x32.mat`).join(', ')} found in ${root}`);
      return present.map((split) => loadSvhn(root, { split }));
    }
  }
}

async function tokenizerFrom(file: string): Promise<CaptionTokenizer> {
  let isDir: boolean;
  try {
    isDir = statSync(file).isDirectory();
  } catch {
    throw new ValueError(`--tokenizer: not found: ${file}`);
  }
  return isDir ? loadTokenizer(file) : loadTokenizerFiles(file, path.join(path.dirname(file), 'tokenizer_config.json'));
}

/** Per split: images, captions, classes, and caption token-length statistics when a tokenizer is given. */
export async function runDataStats(o: DataStatsOptions): Promise<DataStatsResult> {
  const warnings: string[] = [];
  const maxLength = o.maxLength ?? 40;
  const tokenizer = o.tokenizer !== undefined ? await tokenizerFrom(o.tokenizer) : undefined;
  const splits = splitsOf(o, (m) => warnings.push(m)).map((ds) => splitStats(ds, tokenizer ? { tokenizer, maxLength } : {}));
  return { dataset: o.dataset, root: o.root ?? null, tokenizer: o.tokenizer ?? null, maxLength, splits, warnings };
}

/** Markdown: one row per split, then the class names (if any). */
export function formatDataStats(r: DataStatsResult): string {
  const withTokens = r.splits.some((s) => s.tokenLengths);
  const headers = ['split', 'images', 'captions', 'classes'];
  if (withTokens) headers.push('tokens min', 'max', 'mean', 'median', 'p90', `> ${r.maxLength}`);
  const rows = r.splits.map((s) => {
    const row = [s.split, String(s.images), s.captions === undefined ? '-' : String(s.captions), s.classes === undefined ? '-' : String(s.classes)];
    const t = s.tokenLengths;
    if (withTokens) {
      row.push(...(t ? [String(t.min), String(t.max), num(t.mean, 2), num(t.median, 1), num(t.p90, 1), String(t.overMaxLength ?? 0)] : ['-', '-', '-', '-', '-', '-']));
    }
    return row;
  });
  let out = `${r.dataset}${r.root ? ` at ${r.root}` : ''}\n\n${markdownTable(headers, rows)}`;
  const names = r.splits.find((s) => s.classNames)?.classNames;
  if (names) out += `\nClass names (${names.length}): ${names.join(', ')}\n`;
  if (!withTokens && r.splits.some((s) => s.captions !== undefined)) out += '\n(pass --tokenizer FILE for token-length statistics)\n';
  return out;
}

export function registerDataStats(program: Command, io: CliIO): void {
  const data = program.commands.find((c) => c.name() === 'data') ?? program.command('data').description('dataset tools');
  data
    .command('stats')
    .description('per split: images, captions, class names, and caption token lengths (min/max/mean/median/p90)')
    .requiredOption(
      '--dataset <kind>',
      STATS_DATASETS.join(' | '),
      zodArg<StatsDatasetKind>('--dataset', z.enum(STATS_DATASETS, { message: `must be one of ${STATS_DATASETS.join(', ')}` })),
    )
    .option('--root <dir>', 'dataset directory (a CSV file or its directory for csv; unused for shapes)')
    .option('--tokenizer <file>', 'tokenizer.json (or a model directory holding one) for token-length statistics')
    .option('--max-length <n>', 'count captions longer than this many tokens (default 40)', positiveInt('--max-length'))
    .option('--labels <set>', 'CIFAR-100 labels: fine | coarse', zodArg('--labels', z.enum(['fine', 'coarse'])))
    .option('--json', 'print one JSON object on stdout')
    .action(async (o: DataStatsOptions & { json?: boolean }) => {
      const result = await runDataStats(o);
      for (const w of result.warnings) io.stderr(`warning: ${w}\n`);
      if (o.json) writeJson(io, result);
      else io.stdout(formatDataStats(result));
    });
}
