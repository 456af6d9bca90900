import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Rng,
  ShapeError,
  ValueError,
  confusionMatrix,
  inBatchHits,
  inBatchTopK,
  initBackend,
  perClassAccuracy,
  retrievalRecallAtK,
  topKAccuracy,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('classification metrics', () => {
  const scores = [
    [0.1, 0.7, 0.2], // label 1: rank 0
    [0.5, 0.2, 0.3], // label 2: rank 1
    [0.3, 0.4, 0.3], // label 0: rank 1 (tie with class 2 goes to the label)
    [0.9, 0.05, 0.05], // label 1: rank 1 (tie)
  ];
  const labels = [1, 2, 0, 1];

  it('topKAccuracy on arrays and tensors', () => {
    expect(topKAccuracy(scores, labels, 1)).toBe(0.25);
    expect(topKAccuracy(scores, labels, 2)).toBe(1);
    const t = tf.tensor2d(scores);
    expect(topKAccuracy(t, labels, 1)).toBe(0.25);
    t.dispose();
    expect(() => topKAccuracy(scores, labels, 4)).toThrow(/k = 4 exceeds the 3 candidates/);
    expect(() => topKAccuracy(scores, [1, 2, 0], 1)).toThrow(ShapeError);
    expect(() => topKAccuracy(scores, [1, 2, 3, 1], 1)).toThrow(/label 2 = 3 is not a class index/);
  });

  it('confusionMatrix and perClassAccuracy', () => {
    const preds = [1, 0, 1, 0, 2];
    const truth = [1, 2, 0, 0, 2];
    expect(confusionMatrix(preds, truth, 4)).toEqual([
      [1, 1, 0, 0],
      [0, 1, 0, 0],
      [1, 0, 1, 0],
      [0, 0, 0, 0],
    ]);
    const acc = perClassAccuracy(preds, truth, 4);
    expect(acc.slice(0, 3)).toEqual([0.5, 1, 0.5]);
    expect(acc[3]).toBeNaN();
    expect(() => confusionMatrix([5], [0], 4)).toThrow(ValueError);
  });

  it('inBatchTopK ranks the diagonal in rows (image→text) and columns (text→image)', () => {
    const logits = [
      [5, 1, 0],
      [6, 2, 0], // row 1: diagonal 2 < 6 → rank 1
      [0, 3, 1], // row 2: rank 1; column 2: 0,0 < 1 → rank 0
    ];
    // Columns: col 0 diag 5 < 6 → rank 1; col 1 diag 2 < 3 → rank 1; col 2 rank 0.
    expect(inBatchTopK(logits, [1, 2])).toEqual([
      { k: 1, imageToText: 1 / 3, textToImage: 1 / 3 },
      { k: 2, imageToText: 1, textToImage: 1 },
    ]);
    expect(() => inBatchTopK([[1, 2]])).toThrow(/square/);
  });
});

describe('inBatchHits', () => {
  /** The definition written out: rank = candidates scoring strictly above the positive (cosine similarity). */
  function bruteHits(img: number[][], txt: number[][], ks: number[]): { i2t: number[]; t2i: number[] } {
    const unit = (v: number[]) => {
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    const a = img.map(unit);
    const b = txt.map(unit);
    const sim = a.map((x) => b.map((y) => x.reduce((s, xi, d) => s + xi * (y[d] as number), 0)));
    const n = img.length;
    const rankRow = (i: number) => sim[i]!.filter((v) => v > sim[i]![i]!).length;
    const rankCol = (j: number) => sim.filter((row) => row[j]! > sim[j]![j]!).length;
    return {
      i2t: ks.map((k) => Array.from({ length: n }, (_, i) => rankRow(i)).filter((r) => r < k).length),
      t2i: ks.map((k) => Array.from({ length: n }, (_, j) => rankCol(j)).filter((r) => r < k).length),
    };
  }

  it('counts hits like the brute-force definition, ties in the positive\'s favour', () => {
    // Integer-valued, axis-aligned embeddings make exact ties (rows 0 and 3 point the same way).
    const img = [[1, 0], [2, 0], [0, 3], [1, 0], [1, 1]];
    const txt = [[1, 0], [0, 1], [0, 2], [3, 0], [1, 1]];
    const ks = [1, 2, 4];
    const before = tf.memory().numTensors;
    const [a, b] = [tf.tensor2d(img), tf.tensor2d(txt)];
    const hits = inBatchHits(a, b, ks);
    const want = bruteHits(img, txt, ks);
    expect(Array.from(hits.imageToText.dataSync())).toEqual(want.i2t);
    expect(Array.from(hits.textToImage.dataSync())).toEqual(want.t2i);
    tf.dispose([a, b, hits.imageToText, hits.textToImage]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('agrees with the brute force on random embeddings of several batch sizes', () => {
    const rng = new Rng(5);
    for (const n of [1, 3, 9]) {
      const img = Array.from({ length: n }, () => Array.from({ length: 4 }, () => rng.next() - 0.5));
      const txt = Array.from({ length: n }, () => Array.from({ length: 4 }, () => rng.next() - 0.5));
      const ks = [1, 2, 5];
      const [a, b] = [tf.tensor2d(img), tf.tensor2d(txt)];
      const hits = inBatchHits(a, b, ks);
      const want = bruteHits(img, txt, ks);
      expect(Array.from(hits.imageToText.dataSync())).toEqual(want.i2t);
      expect(Array.from(hits.textToImage.dataSync())).toEqual(want.t2i);
      tf.dispose([a, b, hits.imageToText, hits.textToImage]);
    }
  });
});

describe('retrievalRecallAtK', () => {
  /** Brute force over the full similarity matrix, the definition written out. */
  function bruteForce(img: number[][], txt: number[][], t2i: number[], k: number): { i2t: number; t2i: number } {
    const norm = (v: number[]): number[] => v.map((x) => x / Math.hypot(...v));
    const I = img.map(norm);
    const T = txt.map(norm);
    const sim = I.map((a) => T.map((b) => a.reduce((s, x, d) => s + x * (b[d] as number), 0)));
    let i2t = 0;
    I.forEach((_, i) => {
      const order = T.map((_, j) => j).sort((a, b) => (sim[i]?.[b] as number) - (sim[i]?.[a] as number));
      if (order.slice(0, k).some((j) => t2i[j] === i)) i2t++;
    });
    let t2iHits = 0;
    T.forEach((_, j) => {
      const order = I.map((_, i) => i).sort((a, b) => (sim[b]?.[j] as number) - (sim[a]?.[j] as number));
      if (order.slice(0, k).includes(t2i[j] as number)) t2iHits++;
    });
    return { i2t: i2t / I.length, t2i: t2iHits / T.length };
  }

  it('matches a brute-force definition with 5 captions per image, computed in small chunks', async () => {
    const rng = new Rng(4);
    const n = 23;
    const d = 6;
    const img = Array.from({ length: n }, () => Array.from({ length: d }, () => rng.next() - 0.5));
    // Captions: noisy copies of their image, in shuffled order.
    const t2i = rng.shuffle(Array.from({ length: 5 * n }, (_, j) => j % n));
    const txt = t2i.map((i) => (img[i] as number[]).map((x) => x + (rng.next() - 0.5) * 0.8));
    const I = tf.tensor2d(img);
    const T = tf.tensor2d(txt);
    const before = tf.memory().numTensors;
    const got = await retrievalRecallAtK(I, T, t2i, [1, 5, 10], 4);
    expect(tf.memory().numTensors).toBe(before);
    for (const r of got) {
      const want = bruteForce(img, txt, t2i, r.k);
      expect(r.imageToText, `i2t@${r.k}`).toBeCloseTo(want.i2t, 10);
      expect(r.textToImage, `t2i@${r.k}`).toBeCloseTo(want.t2i, 10);
    }
    // The numbers are not trivially 0 or 1 (the test would not notice a constant otherwise).
    expect(got[0]?.textToImage).toBeGreaterThan(0.05);
    expect(got[0]?.textToImage).toBeLessThan(1);
    tf.dispose([I, T]);
  });

  it('rejects bad caption maps', async () => {
    const I = tf.ones([2, 3]) as tf.Tensor2D;
    const T = tf.ones([3, 3]) as tf.Tensor2D;
    await expect(retrievalRecallAtK(I, T, [0, 0])).rejects.toThrow(ShapeError);
    await expect(retrievalRecallAtK(I, T, [0, 0, 0])).rejects.toThrow(/image 1 has no caption/);
    await expect(retrievalRecallAtK(I, T, [0, 1, 2])).rejects.toThrow(/label 2 = 2/);
    tf.dispose([I, T]);
  });
});
