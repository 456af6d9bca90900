import { ValueError } from './errors.js';

/** Summary of token counts per caption: the analysis used to choose `max_length` (40 in the reference). */
export interface TokenLengthStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  median: number;
  p90: number;
  p99: number;
}

/**
 * Percentile with linear interpolation between order statistics (numpy's default `linear` method), so
 * numbers match a Python analysis of the same lengths. `sorted` must be ascending and non-empty.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new ValueError('percentile of an empty list');
  if (!(q >= 0 && q <= 100)) throw new ValueError(`percentile q must be in [0, 100], got ${q}`);
  const pos = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/** min / max / mean / median / p90 / p99 of token lengths (e.g. `CaptionTokenizer.tokenLengths`). */
export function tokenLengthStats(lengths: readonly number[]): TokenLengthStats {
  if (lengths.length === 0) throw new ValueError('tokenLengthStats: no lengths given');
  const sorted = Float64Array.from(lengths);
  for (let i = 0; i < sorted.length; i++) {
    if (!Number.isFinite(sorted[i])) throw new ValueError(`tokenLengthStats: lengths[${i}] is not a finite number`);
  }
  sorted.sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
    mean: sum / sorted.length,
    median: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
  };
}

/** Fraction of lengths ≤ maxLength, i.e. captions that a given max_length does not truncate. */
export function fractionWithin(lengths: readonly number[], maxLength: number): number {
  if (lengths.length === 0) throw new ValueError('fractionWithin: no lengths given');
  let n = 0;
  for (const v of lengths) if (v <= maxLength) n++;
  return n / lengths.length;
}
