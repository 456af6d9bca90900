import { describe, expect, it } from 'vitest';
import { ClipError, fractionWithin, percentile, tokenLengthStats } from '../src/index.js';

describe('tokenLengthStats', () => {
  it('matches numpy (mean, median, linear-interpolated percentiles)', () => {
    // numpy: mean 14.1666…, median 11.5, percentile 90 → 21.3, 99 → 38.02
    const s = tokenLengthStats([12, 7, 9, 15, 22, 11, 8, 10, 13, 40, 9, 14]);
    expect(s.count).toBe(12);
    expect(s.min).toBe(7);
    expect(s.max).toBe(40);
    expect(s.mean).toBeCloseTo(14.166666666666666, 12);
    expect(s.median).toBe(11.5);
    expect(s.p90).toBeCloseTo(21.3, 12);
    expect(s.p99).toBeCloseTo(38.02, 12);
  });

  it('sorts numerically (not as strings) and handles one value', () => {
    expect(tokenLengthStats([100, 9, 20]).median).toBe(20);
    expect(tokenLengthStats([5])).toMatchObject({ min: 5, max: 5, mean: 5, median: 5, p90: 5 });
  });

  it('rejects empty and non-finite input with a ClipError', () => {
    expect(() => tokenLengthStats([])).toThrow(ClipError);
    expect(() => tokenLengthStats([1, Number.NaN])).toThrow(/lengths\[1\]/);
    expect(() => percentile([1], 101)).toThrow(ClipError);
  });

  it('fractionWithin counts lengths a max_length keeps whole', () => {
    expect(fractionWithin([10, 40, 41, 5], 40)).toBe(0.75);
  });
});
