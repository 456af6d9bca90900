import { describe, expect, it } from 'vitest';
import { confusionTable, jsonReplacer, writeJson } from '../src/support/format.js';

// markdownTable and pct are @clip-ts/train/format's (tested there); these are the CLI's own helpers.
describe('JSON / confusion table', () => {
  it('writes one JSON line with NaN as null and typed arrays as arrays', () => {
    let out = '';
    writeJson({ stdout: (t) => (out += t), stderr: () => {} }, { a: Number.NaN, b: new Float32Array([1, 2]) });
    expect(out).toBe('{"a":null,"b":[1,2]}\n');
    expect(jsonReplacer('', Infinity)).toBeNull();
  });

  it('prints a confusion matrix with true classes as rows', () => {
    const t = confusionTable([[3, 1], [0, 4]], ['cat', 'dog']);
    expect(t).toContain('| cat ');
    expect(t.split('\n')[2]).toMatch(/\| cat\s+\|\s+3 \|\s+1 \|/);
  });
});
