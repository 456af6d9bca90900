import { statSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '@clip-ts/core';
import { groupCaptions, parseCaptionCsv, readText } from './captions.js';
import type { CaptionRow } from './captions.js';
import { FileCaptionDataset, resolveCaptionItems } from './file-captions.js';
import { CaptionCsvOptionsSchema } from './schemas.js';
import type { CaptionCsvOptions } from './schemas.js';
import { parseOptions } from './options.js';
import { realDir } from './safe-paths.js';
import { defaultWarn } from './warnings.js';

interface CsvSource {
  file: string;
  imagesDir: string;
  rows: CaptionRow[];
  hasSplit: boolean;
}

function readSource(fileOrDir: string, opts: ReturnType<typeof CaptionCsvOptionsSchema.parse>): CsvSource {
  let file = path.resolve(fileOrDir);
  let st;
  try {
    st = statSync(file);
  } catch {
    throw new DataError(`caption CSV: not found: ${fileOrDir}`);
  }
  if (st.isDirectory()) file = path.join(file, opts.fileName);
  const baseDir = realDir(path.dirname(file), 'caption CSV directory');
  const imagesDir = realDir(opts.imagesDir ? path.resolve(baseDir, opts.imagesDir) : baseDir, 'caption CSV images');
  const rows = parseCaptionCsv(file, readText(file, 'caption CSV', { invalidUtf8: opts.invalidUtf8, warn: opts.onWarning ?? defaultWarn }));
  return { file, imagesDir, rows, hasSplit: rows.some((r) => r.split !== undefined) };
}

function build(src: CsvSource, rows: readonly CaptionRow[], split: string, opts: ReturnType<typeof CaptionCsvOptionsSchema.parse>): FileCaptionDataset {
  const warn = opts.onWarning ?? defaultWarn;
  const groups = groupCaptions(rows, src.file, warn);
  const entries = [...groups].map(([name, g]) => ({ name, where: `${src.file}:${g.line}` }));
  const items = resolveCaptionItems({
    label: `caption CSV ${src.file} split '${split}'`,
    entries,
    captions: groups,
    captionsFile: src.file,
    realImagesDir: src.imagesDir,
    onMissing: opts.onMissing,
    warn,
  });
  return new FileCaptionDataset('csv', split, items, opts.onBadImage);
}

/**
 * A custom caption set from a CSV of `image,caption` rows (header optional; several rows per image give
 * several captions; an optional `split` column selects rows with `options.split`). Image paths are
 * relative to the CSV's directory (or `imagesDir`) and must stay inside it. `fileOrDir` may be the
 * directory holding `captions.csv`.
 */
export function loadCaptionCsv(fileOrDir: string, options: CaptionCsvOptions = {}): FileCaptionDataset {
  const opts = parseOptions(CaptionCsvOptionsSchema, options, 'loadCaptionCsv');
  const src = readSource(fileOrDir, opts);
  if (opts.split === undefined) return build(src, src.rows, 'all', opts);
  if (!src.hasSplit) throw new DataError(`${src.file}: split '${opts.split}' requested but the CSV has no 'split' column`);
  return build(src, src.rows.filter((r) => r.split === opts.split), opts.split, opts);
}

/** Every split of a caption CSV (by its `split` column, in first-appearance order), or `{ all }` without one. */
export function loadCaptionCsvSplits(fileOrDir: string, options: Omit<CaptionCsvOptions, 'split'> = {}): Record<string, FileCaptionDataset> {
  const opts = parseOptions(CaptionCsvOptionsSchema, options, 'loadCaptionCsvSplits');
  const src = readSource(fileOrDir, opts);
  if (!src.hasSplit) return { all: build(src, src.rows, 'all', opts) };
  const splits = [...new Set(src.rows.map((r) => r.split as string))];
  return Object.fromEntries(splits.map((s) => [s, build(src, src.rows.filter((r) => r.split === s), s, opts)]));
}
