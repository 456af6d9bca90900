import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, ValueError } from '@clip-ts/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  chooseLambda,
  crossEntropy,
  fitLogisticRegression,
  holdOut,
  kShotProbe,
  linearProbe,
  logits,
  meanStd,
  standardize,
  writeKShotPlot,
  type LabelledRows,
} from '../src/index.js';

interface Reference {
  classes: number;
  dim: number;
  count: number;
  data: number[];
  labels: number[];
  fits: Array<{ lambda: number; loss: number; weights: number[]; bias: number[]; predictions: number[] }>;
}
// Written by fixtures/make_logreg_reference.py (torch.optim.LBFGS in float64, gradient < 1e-8 at the solution).
const REF = JSON.parse(readFileSync(new URL('./fixtures/logreg-reference.json', import.meta.url), 'utf8')) as Reference;

/** `perClass` points per class around well-separated random centres on the unit sphere (then normalised, like CLIP embeddings). */
function clusters(classes: number, perClass: number, dim: number, spread: number, seed: number): LabelledRows {
  const rng = new Rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, gauss));
  const data = new Float32Array(classes * perClass * dim);
  const labels: number[] = [];
  for (let i = 0; i < classes * perClass; i++) {
    const c = i % classes;
    labels.push(c);
    const v = (centres[c] as number[]).map((m) => m + spread * gauss());
    const norm = Math.hypot(...v);
    v.forEach((x, j) => (data[i * dim + j] = x / norm));
  }
  return { data, count: labels.length, dim, labels };
}

describe('fitLogisticRegression', () => {
  const rows: LabelledRows = { data: REF.data, count: REF.count, dim: REF.dim, labels: REF.labels };

  for (const ref of REF.fits) {
    it(`matches the float64 PyTorch reference at λ = ${ref.lambda} (weights within 1e-5, loss within 1e-9)`, () => {
      const fit = fitLogisticRegression(rows, REF.classes, { lambda: ref.lambda, tol: 1e-10, maxIter: 2000 });
      expect(fit.converged).toBe(true);
      expect(Math.abs(fit.loss - ref.loss)).toBeLessThan(1e-9);
      const dw = Math.max(...ref.weights.map((w, i) => Math.abs(w - (fit.weights[i] as number))));
      const db = Math.max(...ref.bias.map((b, i) => Math.abs(b - (fit.bias[i] as number))));
      expect(dw).toBeLessThan(1e-5);
      expect(db).toBeLessThan(1e-5);
      const z = logits(fit, rows);
      const pred = Array.from({ length: REF.count }, (_, i) => {
        const r = Array.from(z.subarray(i * REF.classes, (i + 1) * REF.classes));
        return r.indexOf(Math.max(...r));
      });
      expect(pred).toEqual(ref.predictions);
      // The objective reported is the penalised cross-entropy at the returned weights.
      const sq = Array.from(fit.weights).reduce((a, w) => a + w * w, 0);
      expect(crossEntropy(fit, rows) + 0.5 * ref.lambda * sq).toBeCloseTo(fit.loss, 12);
    });
  }

  it('matches the reference with the tfjs (float32) engine too: same predictions, loss within 1e-5, weights within 1e-2, no leaked tensors', () => {
    for (const ref of REF.fits) {
      const before = tf.memory().numTensors;
      const fit = fitLogisticRegression(rows, REF.classes, { lambda: ref.lambda, engine: 'tensor' });
      expect(tf.memory().numTensors).toBe(before);
      expect(Math.abs(fit.loss - ref.loss)).toBeLessThan(1e-5);
      const dw = Math.max(...ref.weights.map((w, i) => Math.abs(w - (fit.weights[i] as number))));
      expect(dw).toBeLessThan(1e-2);
      const z = logits(fit, rows);
      const pred = Array.from({ length: REF.count }, (_, i) => {
        const r = Array.from(z.subarray(i * REF.classes, (i + 1) * REF.classes));
        return r.indexOf(Math.max(...r));
      });
      expect(pred).toEqual(ref.predictions);
    }
  });

  it('rejects labels outside the classes, naming the row', () => {
    expect(() => fitLogisticRegression({ data: [0, 1, 2, 3], count: 2, dim: 2, labels: [0, 3] }, 2, { lambda: 1 })).toThrow(/label 3 of row 1/);
    expect(() => fitLogisticRegression({ data: [0, 1, 2], count: 2, dim: 2, labels: [0, 1] }, 2, { lambda: 1 })).toThrow(ValueError);
    expect(() => fitLogisticRegression({ data: [0, 1, 2, 3], count: 2, dim: 2, labels: [0, 1] }, 2, { lambda: -1 })).toThrow(/lambda/);
  });
});

describe('linearProbe', () => {
  it('reaches ~100% on separable synthetic embeddings, with λ chosen on held-out train rows', () => {
    const train = clusters(5, 40, 16, 0.15, 1);
    const test = clusters(5, 20, 16, 0.15, 1); // same seed → same centres, so the same classes
    const before = tf.memory().numTensors;
    const r = linearProbe(train, test, 5, { lambdas: [1e-4, 1e-2, 1] });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.topK[1]).toBeGreaterThanOrEqual(0.99);
    expect(r.topK[5]).toBe(1);
    expect(r.validation.map((v) => v.lambda)).toEqual([1, 1e-2, 1e-4]);
    expect(r.validation.map((v) => v.lambda)).toContain(r.lambda);
    const best = Math.max(...r.validation.map((v) => v.accuracy));
    expect(r.validation.find((v) => v.lambda === r.lambda)?.accuracy).toBe(best);
  });

  it('scores near chance when the test classes are unrelated to the train classes', () => {
    const train = clusters(4, 50, 8, 0.1, 2);
    const test = clusters(4, 50, 8, 0.1, 3); // different seed → unrelated centres
    const r = linearProbe(train, test, 4, { lambdas: [1e-2] });
    expect(r.topK[1]).toBeLessThan(0.6);
    expect(r.validation).toEqual([]);
  });

  it('standardises every set with the fitting rows\' mean and deviation only', () => {
    const fit: LabelledRows = { data: [1, 5, 3, 5], count: 2, dim: 2, labels: [0, 1] };
    const other: LabelledRows = { data: [100, 7], count: 1, dim: 2, labels: [1] };
    const [a, b] = standardize(fit, [fit, other]);
    expect(Array.from(a?.data ?? [])).toEqual([-1, 0, 1, 0]);
    // mean (2, 5), deviation (1, constant → scale 1)
    expect(Array.from(b?.data ?? [])).toEqual([98, 2]);
    expect(b?.labels).toEqual([1]);
  });

  it('holds out a stratified, seeded part of each class', () => {
    const labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2];
    const a = holdOut(labels, 3, 0.4, 7);
    expect(a).toEqual(holdOut(labels, 3, 0.4, 7));
    expect(a.val.map((i) => labels[i])).toEqual([0, 0, 1, 1]);
    expect([...a.fit, ...a.val].sort((x, y) => x - y)).toEqual(labels.map((_, i) => i));
    expect(() => holdOut(labels, 3, 1, 0)).toThrow(ValueError);
  });

  it('records held-out accuracy and loss for every λ and keeps the most accurate', () => {
    const train = clusters(3, 30, 40, 2.0, 4);
    const { lambda, validation } = chooseLambda(train, 3, { lambdas: [1e-6, 1e-2, 1] });
    expect(validation).toHaveLength(3);
    for (const v of validation) expect(v.loss).toBeGreaterThan(0);
    expect(validation.find((v) => v.lambda === lambda)?.accuracy).toBe(Math.max(...validation.map((v) => v.accuracy)));
  });
});

describe('kShotProbe', () => {
  it('reports mean ± std over seeded draws, improving with k, reproducibly', () => {
    const train = clusters(4, 30, 12, 0.6, 5);
    const test = clusters(4, 25, 12, 0.6, 5);
    const before = tf.memory().numTensors;
    const pts = kShotProbe(train, test, 4, { shots: [1, 16], repeats: 4, seed: 3, lambda: 1e-2 });
    expect(tf.memory().numTensors).toBe(before);
    expect(pts.map((p) => [p.shots, p.images])).toEqual([
      [1, 4],
      [16, 64],
    ]);
    for (const p of pts) {
      const t = p.topK[1];
      expect(t?.runs).toHaveLength(4);
      expect(t?.mean).toBeCloseTo(meanStd(t?.runs ?? []).mean, 12);
    }
    expect(pts[1]?.topK[1]?.mean).toBeGreaterThan(pts[0]?.topK[1]?.mean ?? 1);
    // Different draws per repeat: with one shot the runs are not all identical.
    expect(new Set(pts[0]?.topK[1]?.runs).size).toBeGreaterThan(1);
    expect(kShotProbe(train, test, 4, { shots: [1, 16], repeats: 4, seed: 3, lambda: 1e-2 })).toEqual(pts);
  });

  it('uses every image of a class smaller than k', () => {
    const train = clusters(2, 3, 4, 0.1, 6);
    const [p] = kShotProbe(train, train, 2, { shots: [8], repeats: 1 });
    expect(p?.images).toBe(6);
    expect(() => kShotProbe(train, train, 2, { shots: [0] })).toThrow(ValueError);
  });

  it('computes the population standard deviation', () => {
    expect(meanStd([1, 3])).toEqual({ mean: 2, std: 1, runs: [1, 3] });
  });

  it('writes the k-shot figure as SVG and PNG', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clip-kshot-'));
    try {
      const points = [1, 2, 4].map((shots, i) => ({ shots, images: shots * 2, topK: { 1: meanStd([0.5 + 0.1 * i, 0.6 + 0.1 * i]) } }));
      const out = await writeKShotPlot(dir, { points, zeroShot: 0.55, fullProbe: 0.9, chance: 0.5 });
      const svg = await readFile(out.svg, 'utf8');
      expect(svg).toMatch(/^<svg/);
      expect(svg).toContain('zero-shot');
      expect(svg).toContain('labelled images per class');
      const png = await readFile(out.png);
      expect([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
