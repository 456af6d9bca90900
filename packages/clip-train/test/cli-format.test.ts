import { describe, expect, it } from 'vitest';
import { confusionTable, jsonReplacer, markdownTable, pct, writeJson } from '../src/cli-support/format.js';

describe('markdownTable', () => {
  it('pads columns, right-aligns numeric ones and escapes pipes', () => {
    const t = markdownTable(['prompt', 'top-1'], [
      ['a photo of a {}.', '54.05%'],
      ['a|b', '5.00%'],
    ]);
    const lines = t.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/^\|-+\|-+:\|$/);
    expect(lines[2]).toBe('| a photo of a {}. | 54.05% |');
    expect(lines[3]).toBe('| a\\|b             |  5.00% |');
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  });
});

describe('pct / JSON', () => {
  it('formats percentages and never prints NaN', () => {
    expect(pct(0.80421)).toBe('80.42%');
    expect(pct(Number.NaN)).toBe('n/a');
  });

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
