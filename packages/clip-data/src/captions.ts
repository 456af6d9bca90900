import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { DataError } from '@clip-ts/core';
import { listSome } from './list-some.js';
import { checkRelativeName } from './safe-paths.js';
import { decodeTextFile, type TextFileOptions } from './text-file.js';
import type { WarningSink } from './types.js';

/** One caption as read from a file, with where it came from (for errors). */
export interface CaptionRow {
  image: string;
  caption: string;
  line: number;
  /** Value of the optional `split` column of a caption CSV. */
  split?: string;
}

/** A dataset text file, checked (line length, UTF-8; see decodeTextFile) and without its BOM. */
export function readText(file: string, what: string, options: TextFileOptions = {}): string {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new DataError(`${what}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return decodeTextFile(file, what, bytes, options);
}

interface CsvCode {
  code?: string;
  lines?: number;
  message: string;
}

/**
 * Parse a caption CSV: rows `image,caption` (optionally `split`), a header `image,caption[,split]` (any
 * column order) or none. Captions may be quoted ("a dog, ""big"""); an unquoted caption with stray commas
 * or quotes is accepted (the extra fields are the caption's). Malformed rows throw naming `file:line`.
 */
export function parseCaptionCsv(file: string, text: string = readText(file, 'caption CSV')): CaptionRow[] {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  let lastGoodLine = 0;
  try {
    records = parse(text, {
      info: true,
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
      bom: true,
      on_record: (record, context) => {
        lastGoodLine = context.lines;
        return record;
      },
    }) as unknown as typeof records;
  } catch (err) {
    const e = err as CsvCode;
    // csv-parse reports an unclosed quote at the end of the file; the faulty record starts after the last good one.
    const unclosed = e.code === 'CSV_QUOTE_NOT_CLOSED';
    const line = unclosed ? nextNonBlankLine(text, lastGoodLine) : (e.lines ?? 0);
    throw new DataError(`${file}:${line}: malformed CSV: ${unclosed ? 'a quoted field is never closed' : e.message}`, { cause: err });
  }
  let col = { image: 0, caption: 1, split: -1 };
  const first = records[0]?.record.map((f) => f.trim().toLowerCase());
  if (first && first.includes('image') && first.includes('caption')) {
    col = { image: first.indexOf('image'), caption: first.indexOf('caption'), split: first.indexOf('split') };
    records = records.slice(1);
  }
  const rows: CaptionRow[] = [];
  const width = Math.max(col.image, col.caption, col.split) + 1;
  for (const { record, info } of records) {
    // info.lines is where the record ends; a quoted field may span lines, so count back to its start.
    const spanned = record.reduce((n, f) => n + (f.match(/\n/g)?.length ?? 0), 0);
    const where = `${file}:${info.lines - spanned}`;
    if (spanned > 0) {
      throw new DataError(`${where}: malformed caption row: a quoted field runs over ${spanned + 1} lines (a quote that is never closed?)`);
    }
    if (record.every((f) => f.trim() === '')) continue;
    if (record.length < width) {
      throw new DataError(`${where}: malformed caption row: expected ${width} fields (image, caption${col.split >= 0 ? ', split' : ''}), got ${record.length}`);
    }
    // Extra fields come from unquoted commas inside the caption (the caption is the last column in practice).
    const caption = (record.length > width && col.caption === width - 1 ? record.slice(col.caption).join(',') : record[col.caption] ?? '').trim();
    const image = (record[col.image] ?? '').trim();
    if (image === '') throw new DataError(`${where}: malformed caption row: empty image name`);
    if (caption === '') throw new DataError(`${where}: malformed caption row: empty caption for ${image}`);
    checkRelativeName(image, where);
    const row: CaptionRow = { image, caption, line: info.lines };
    if (col.split >= 0) row.split = (record[col.split] ?? '').trim();
    rows.push(row);
  }
  return rows;
}

/** 1-based number of the first non-blank line after line `after`. */
function nextNonBlankLine(text: string, after: number): number {
  const lines = text.split('\n');
  let i = after;
  while (i < lines.length && (lines[i] ?? '').trim() === '') i++;
  return i + 1;
}

/** Parse the original `Flickr8k.token.txt`: `name.jpg#N<TAB>caption` per line. */
export function parseTokenFile(file: string, text: string = readText(file, 'Flickr8k token file')): CaptionRow[] {
  const rows: CaptionRow[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    if (raw.trim() === '') continue;
    const where = `${file}:${i + 1}`;
    const tab = raw.indexOf('\t');
    const m = tab >= 0 ? [raw.slice(0, tab), raw.slice(tab + 1)] : /^(\S+)\s+(.*)$/.exec(raw)?.slice(1);
    const id = /^(.+)#(\d+)$/.exec(m?.[0]?.trim() ?? '');
    const caption = m?.[1]?.trim() ?? '';
    if (!m || !id || caption === '') {
      throw new DataError(`${where}: malformed caption line: expected 'name.jpg#N<TAB>caption', got '${truncate(raw)}'`);
    }
    const image = id[1] as string;
    checkRelativeName(image, where);
    rows.push({ image, caption, line: i + 1 });
  }
  return rows;
}

function truncate(s: string, n = 80): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

export interface CaptionGroup {
  captions: string[];
  /** Line of the first caption of this image. */
  line: number;
}

/** Group rows by image in first-appearance order; exact duplicate (image, caption) pairs are dropped and reported. */
export function groupCaptions(rows: readonly CaptionRow[], file: string, warn: WarningSink): Map<string, CaptionGroup> {
  const groups = new Map<string, CaptionGroup>();
  const dupLines: number[] = [];
  for (const r of rows) {
    const g = groups.get(r.image);
    if (!g) groups.set(r.image, { captions: [r.caption], line: r.line });
    else if (g.captions.includes(r.caption)) dupLines.push(r.line);
    else g.captions.push(r.caption);
  }
  if (dupLines.length > 0) {
    warn(`${file}: ${dupLines.length} duplicate caption row(s) ignored (lines ${listSome(dupLines.map(String))})`);
  }
  return groups;
}

/** Read a list of image names (a split file), one per line; names are checked; duplicates are reported and dropped. */
export function readNameList(file: string, warn: WarningSink): Array<{ name: string; line: number }> {
  const out: Array<{ name: string; line: number }> = [];
  const seen = new Set<string>();
  const dups: string[] = [];
  const lines = readText(file, 'split file', { warn }).split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const name = (lines[i] ?? '').trim();
    if (name === '') continue;
    checkRelativeName(name, `${file}:${i + 1}`);
    if (seen.has(name)) {
      dups.push(`${name} (line ${i + 1})`);
      continue;
    }
    seen.add(name);
    out.push({ name, line: i + 1 });
  }
  if (dups.length > 0) warn(`${file}: ${dups.length} duplicate image name(s) ignored: ${listSome(dups)}`);
  return out;
}
