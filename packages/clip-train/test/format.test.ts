import { describe, expect, it } from 'vitest';
import { markdownTable, pct } from '../src/format/index.js';

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

  it('keeps a column left-aligned when told to, even if it looks numeric', () => {
    const lines = markdownTable(['Metric', 'Value'], [['Test loss', '0.1234'], ['Epochs trained', '2']], ['left', 'left']).trimEnd().split('\n');
    expect(lines[1]).toMatch(/^\|-+\|-+\|$/);
    expect(lines[3]).toBe('| Epochs trained | 2      |');
  });
});

describe('pct', () => {
  it('formats percentages and never prints NaN', () => {
    expect(pct(0.80421)).toBe('80.42%');
    expect(pct(0.5, 1)).toBe('50.0%');
    expect(pct(Number.NaN)).toBe('n/a');
  });
});
