import { markdownTable } from '@clip-ts/train/format';
import type { CliIO } from '../cli.js';

// One table writer and one percentage format for the CLI and train's results table.
export { markdownTable, pct, type Align } from '@clip-ts/train/format';

/** A fixed-point number, "n/a" when not finite. */
export function num(x: number, digits = 4): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

/**
 * A confusion matrix as a markdown table: rows are true classes, columns predicted classes. Class names
 * are abbreviated in the header when there are many, so the table stays readable.
 */
export function confusionTable(matrix: ReadonlyArray<ArrayLike<number>>, classNames: readonly string[]): string {
  const short = classNames.map((c) => (classNames.length > 6 && c.length > 6 ? c.slice(0, 6) : c));
  const headers = ['true \\ predicted', ...short];
  const rows = matrix.map((row, i) => [classNames[i] ?? String(i), ...Array.from(row, (v) => String(v))]);
  return markdownTable(headers, rows);
}

/**
 * JSON output for `--json`: one object on stdout, nothing else there. Non-finite numbers become null (JSON
 * has no NaN), typed arrays become plain arrays.
 */
export function writeJson(io: CliIO, value: unknown): void {
  io.stdout(`${JSON.stringify(value, jsonReplacer)}\n`);
}

export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
  return value;
}

/** Where progress goes: stderr always, so stdout carries only the result (a table, or one JSON object). */
export function progress(io: CliIO, message: string): void {
  io.stderr(`${message}\n`);
}
