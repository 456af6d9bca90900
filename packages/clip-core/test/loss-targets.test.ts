import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, ValueError, clipLoss, initBackend, normalizeCaption, positiveGroups, positiveMask, siglipLoss } from '../src/index.js';

/** Brute force: i ~ j when they share an index or a normalised caption, closed transitively (Floyd–Warshall). */
function bruteMask(indices: number[], captions?: string[]): number[][] {
  const n = indices.length;
  const norm = (s: string) => s.toLowerCase().split(/\s+/).filter(Boolean).join(' ').replace(/[.,;:!?'"\s-]+$/, '');
  const r = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => i === j || indices[i] === indices[j] || (captions !== undefined && norm(captions[i] as string) === norm(captions[j] as string))),
  );
  for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (r[i]?.[k] && r[k]?.[j]) (r[i] as boolean[])[j] = true;
  return r.map((row) => row.map((b) => (b ? 1 : 0)));
}

/** Float64 loops: cross-entropy with targets spread evenly over the positives of each row and each column. */
function bruteClipLoss(img: number[][], txt: number[][], logScale: number, pos: number[][]): number {
  const unit = (v: number[]) => {
    const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / n);
  };
  const a = img.map(unit);
  const b = txt.map(unit);
  const n = a.length;
  const L = a.map((u) => b.map((w) => Math.exp(logScale) * u.reduce((s, x, k) => s + x * (w[k] as number), 0)));
  const ce = (row: (j: number) => number, p: (j: number) => number) => {
    let m = -Infinity;
    for (let j = 0; j < n; j++) m = Math.max(m, row(j));
    let z = 0;
    let cnt = 0;
    let t = 0;
    for (let j = 0; j < n; j++) {
      z += Math.exp(row(j) - m);
      cnt += p(j);
      t += p(j) * row(j);
    }
    return m + Math.log(z) - t / cnt;
  };
  let li = 0;
  let lt = 0;
  for (let i = 0; i < n; i++) {
    li += ce((j) => L[i]?.[j] as number, (j) => pos[i]?.[j] as number);
    lt += ce((j) => L[j]?.[i] as number, (j) => pos[j]?.[i] as number);
  }
  return (li / n + lt / n) / 2;
}

describe('multi-positive targets', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('normalises captions: lowercase, collapsed whitespace, no trailing punctuation', () => {
    expect(normalizeCaption('  A Red   CIRCLE.  ')).toBe('a red circle');
    expect(normalizeCaption('a red circle!!')).toBe('a red circle');
    expect(normalizeCaption('a red, circle')).toBe('a red, circle');
  });

  it('groups match a brute-force transitive closure on random batches', () => {
    const rng = new Rng(5);
    const words = ['a red circle', 'A red circle.', 'a blue square', 'a  blue square!', 'a green star'];
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(rng.next() * 12);
      const indices = Array.from({ length: n }, () => Math.floor(rng.next() * 10));
      const captions = Array.from({ length: n }, () => words[Math.floor(rng.next() * words.length)] as string);
      for (const mode of ['auto', 'grouped'] as const) {
        const want = bruteMask(indices, mode === 'grouped' ? captions : undefined);
        const mask = positiveMask(mode, indices, captions);
        const identity = want.every((row, i) => row.every((v, j) => v === (i === j ? 1 : 0)));
        if (identity) expect(mask).toBeUndefined();
        else expect(Array.from(mask ?? [])).toEqual(want.flat());
      }
      expect(positiveMask('diagonal', indices, captions)).toBeUndefined();
    }
    // Transitive: 0~1 by image, 1~2 by caption → 0~2.
    expect(positiveGroups([4, 4, 9], ['x', 'y', 'Y.'])).toEqual([0, 0, 0]);
    expect(() => positiveMask('grouped', [1, 2])).toThrow(ValueError);
  });

  it('the grouped CLIP loss equals a float64 brute force; with no duplicates it is the diagonal loss', () => {
    const rng = new Rng(9);
    const rand = (n: number, d: number) => Array.from({ length: n }, () => Array.from({ length: d }, () => rng.next() * 2 - 1));
    const indices = [3, 1, 3, 7, 1, 2];
    const captions = ['a cat', 'a dog', 'a cat', 'a CAT.', 'x', 'y'];
    const img = rand(6, 5);
    const txt = rand(6, 5);
    const pos = bruteMask(indices, captions);
    const mask = positiveMask('grouped', indices, captions) as Float32Array;
    const [a, b, s, p] = [tf.tensor2d(img), tf.tensor2d(txt), tf.scalar(1.7), tf.tensor2d(mask, [6, 6])];
    const got = clipLoss(a, b, s, { positives: p }).dataSync()[0] as number;
    expect(got).toBeCloseTo(bruteClipLoss(img, txt, 1.7, pos), 5);
    const eye = tf.eye(6) as tf.Tensor2D;
    const diag = clipLoss(a, b, s).dataSync()[0] as number;
    expect(clipLoss(a, b, s, { positives: eye }).dataSync()[0]).toBeCloseTo(diag, 6);
    expect(Math.abs(got - diag)).toBeGreaterThan(1e-3);
    // SigLIP: positives are labelled +1, so relabelling changes the loss.
    const bias = tf.scalar(-2);
    expect(siglipLoss(a, b, s, bias, { positives: p }).dataSync()[0]).not.toBeCloseTo(siglipLoss(a, b, s, bias).dataSync()[0] as number, 3);
    tf.dispose([a, b, s, p, eye, bias]);
  });
});
