import { Rng, ValueError } from '@clip-ts/core';
import { crossEntropy, fitLogisticRegression, logits, topKFromScores, type LabelledRows, type LogisticFit } from './logistic.js';

// CLIP's linear-probe protocol on frozen embeddings: L2 strength chosen on a held-out part of train,
// refit on all of train, scored on test. k-shot draws k labelled images per class (seeded, repeated).
// Features are standardised with the statistics of the rows each fit sees (see `standardize`).

/** CLIP's paper sweeps λ over a log grid; seven decades cover normalised embeddings with room to spare. */
export const DEFAULT_LAMBDAS: readonly number[] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];
export const DEFAULT_SHOTS: readonly number[] = [1, 2, 4, 8, 16];

export interface ProbeOptions {
  /** λ grid (default {@link DEFAULT_LAMBDAS}). A single value skips the validation sweep. */
  lambdas?: readonly number[];
  /** Fraction of each class's train rows held out to choose λ (default 0.2). */
  valFraction?: number;
  /** Seed of the held-out draw (default 0). */
  seed?: number;
  /** L-BFGS iterations per fit (default 500). */
  maxIter?: number;
  /** top-k reported (default [1, 5]; k above the class count is left out). */
  ks?: readonly number[];
}

export interface LambdaScore {
  lambda: number;
  /** Held-out top-1 accuracy and mean cross-entropy. */
  accuracy: number;
  loss: number;
}

export interface ProbeResult {
  classes: number;
  trainImages: number;
  testImages: number;
  /** The λ used for the final fit. */
  lambda: number;
  /** The validation sweep (empty when a single λ was given). */
  validation: LambdaScore[];
  /** k → test accuracy. */
  topK: Record<number, number>;
  /** The final fit on all train rows, standardised by their mean and deviation (plain arrays). */
  model: LogisticFit;
}

/** Rows of `rows` at `indices`, in that order. */
export function selectRows(rows: LabelledRows, indices: readonly number[]): LabelledRows {
  const data = new Float32Array(indices.length * rows.dim);
  indices.forEach((r, i) => {
    for (let j = 0; j < rows.dim; j++) data[i * rows.dim + j] = rows.data[r * rows.dim + j] as number;
  });
  return { data, count: indices.length, dim: rows.dim, labels: indices.map((r) => rows.labels[r] as number) };
}

/**
 * Standardise features with the mean and standard deviation of `fitRows` (per dimension), applied to every
 * set in `sets`. CLIP embeddings are unit vectors whose dimensions can vary over a tiny range (a random or
 * weakly trained tower); without this the useful λ would depend on that range, and the grid could miss it.
 * Only the fitting rows' statistics are used, so nothing about held-out or test rows leaks into the fit.
 */
export function standardize(fitRows: LabelledRows, sets: readonly LabelledRows[]): LabelledRows[] {
  const { dim, count } = fitRows;
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let i = 0; i < count; i++) for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) + (fitRows.data[i * dim + j] as number) / count;
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dim; j++) {
      const d = (fitRows.data[i * dim + j] as number) - (mean[j] as number);
      sq[j] = (sq[j] as number) + (d * d) / count;
    }
  }
  // A dimension constant over the fitting rows carries no information: centre it, leave its scale alone.
  const scale = Array.from(sq, (v) => (v > 1e-24 ? 1 / Math.sqrt(v) : 1));
  return sets.map((rows) => {
    if (rows.dim !== dim) throw new ValueError(`probe: ${rows.dim}-dim rows where ${dim} were expected`);
    const data = new Float64Array(rows.count * dim);
    for (let i = 0; i < rows.count; i++) {
      for (let j = 0; j < dim; j++) data[i * dim + j] = ((rows.data[i * dim + j] as number) - (mean[j] as number)) * (scale[j] as number);
    }
    return { data, count: rows.count, dim, labels: rows.labels };
  });
}

/** Row indices per class, each list in a seeded random order. */
function shuffledByClass(labels: readonly number[], classes: number, rng: Rng): number[][] {
  const by: number[][] = Array.from({ length: classes }, () => []);
  labels.forEach((l, i) => by[l]?.push(i));
  return by.map((list) => rng.shuffle(list));
}

/**
 * Stratified seeded split of train rows: `valFraction` of each class held out, at least one row of each
 * class with two or more rows. Classes with one row stay in the fitting part.
 */
export function holdOut(labels: readonly number[], classes: number, valFraction: number, seed: number): { fit: number[]; val: number[] } {
  if (!(valFraction > 0 && valFraction < 1)) throw new ValueError(`probe: valFraction must be in (0, 1), got ${valFraction}`);
  const fit: number[] = [];
  const val: number[] = [];
  for (const list of shuffledByClass(labels, classes, new Rng(seed))) {
    const nVal = list.length < 2 ? 0 : Math.max(1, Math.round(list.length * valFraction));
    val.push(...list.slice(0, nVal));
    fit.push(...list.slice(nVal));
  }
  return { fit: fit.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}

function scoreTopK(fit: LogisticFit, rows: LabelledRows, ks: readonly number[]): Record<number, number> {
  const z = logits(fit, rows);
  const out: Record<number, number> = {};
  for (const k of ks) if (k <= fit.classes) out[k] = topKFromScores(z, fit.classes, rows.labels, k);
  return out;
}

/**
 * Choose λ on a held-out part of `train`: fit each λ (strongest first, each warm-started from the previous
 * solution), keep the best held-out accuracy, ties broken by held-out cross-entropy.
 */
export function chooseLambda(train: LabelledRows, classes: number, options: ProbeOptions = {}): { lambda: number; validation: LambdaScore[] } {
  const lambdas = [...(options.lambdas ?? DEFAULT_LAMBDAS)].sort((a, b) => b - a);
  if (lambdas.length === 0) throw new ValueError('probe: empty λ grid');
  if (lambdas.length === 1) return { lambda: lambdas[0] as number, validation: [] };
  const split = holdOut(train.labels, classes, options.valFraction ?? 0.2, options.seed ?? 0);
  if (split.val.length === 0) throw new ValueError('probe: too few train images per class to hold any out for choosing λ; pass one λ');
  const [fitRows, valRows] = standardize(selectRows(train, split.fit), [selectRows(train, split.fit), selectRows(train, split.val)]) as [LabelledRows, LabelledRows];
  const validation: LambdaScore[] = [];
  let prev: LogisticFit | undefined;
  for (const lambda of lambdas) {
    prev = fitLogisticRegression(fitRows, classes, { lambda, maxIter: options.maxIter, ...(prev ? { init: prev } : {}) });
    const z = logits(prev, valRows);
    validation.push({ lambda, accuracy: topKFromScores(z, classes, valRows.labels, 1), loss: crossEntropy(prev, valRows) });
  }
  const best = validation.reduce((a, b) => (b.accuracy > a.accuracy || (b.accuracy === a.accuracy && b.loss < a.loss) ? b : a));
  return { lambda: best.lambda, validation };
}

/** The full linear probe: choose λ on held-out train rows, refit on all of train, score test. No tensors. */
export function linearProbe(train: LabelledRows, test: LabelledRows, classes: number, options: ProbeOptions = {}): ProbeResult {
  if (train.dim !== test.dim) throw new ValueError(`probe: train has ${train.dim}-dim embeddings, test ${test.dim}`);
  const { lambda, validation } = chooseLambda(train, classes, options);
  const [trainStd, testStd] = standardize(train, [train, test]) as [LabelledRows, LabelledRows];
  const model = fitLogisticRegression(trainStd, classes, { lambda, maxIter: options.maxIter });
  return { classes, trainImages: train.count, testImages: test.count, lambda, validation, topK: scoreTopK(model, testStd, options.ks ?? [1, 5]), model };
}

export interface MeanStd {
  mean: number;
  std: number;
  /** One value per repeat. */
  runs: number[];
}

export interface KShotPoint {
  /** Labelled images per class asked for. */
  shots: number;
  /** Train images actually used per repeat (fewer when a class has fewer than `shots`). */
  images: number;
  topK: Record<number, MeanStd>;
}

export interface KShotOptions {
  shots?: readonly number[];
  /** Draws per k (default 5). */
  repeats?: number;
  seed?: number;
  /** λ of every k-shot fit (too few images to hold any out); default: the full probe's choice, or 1e-3. */
  lambda?: number;
  maxIter?: number;
  ks?: readonly number[];
}

/** Mean and (population) standard deviation. */
export function meanStd(runs: number[]): MeanStd {
  const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
  const std = Math.sqrt(runs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / runs.length);
  return { mean, std, runs };
}

/**
 * k-shot linear probes: for each k, `repeats` seeded draws of k train rows per class, a logistic
 * regression fit on each, scored on all of `test`. No tensors.
 */
export function kShotProbe(train: LabelledRows, test: LabelledRows, classes: number, options: KShotOptions = {}): KShotPoint[] {
  const repeats = options.repeats ?? 5;
  if (!Number.isInteger(repeats) || repeats < 1) throw new ValueError(`k-shot: repeats must be a positive integer, got ${repeats}`);
  const shots = options.shots ?? DEFAULT_SHOTS;
  const bad = shots.find((k) => !Number.isInteger(k) || k < 1);
  if (bad !== undefined) throw new ValueError(`k-shot: shots must be positive integers, got ${bad}`);
  const ks = options.ks ?? [1, 5];
  const lambda = options.lambda ?? 1e-3;
  const root = new Rng(options.seed ?? 0);
  return shots.map((k) => {
    const per: Record<number, number[]> = {};
    let images = 0;
    for (let r = 0; r < repeats; r++) {
      const picks = shuffledByClass(train.labels, classes, root.fork(k * 1009 + r)).flatMap((list) => list.slice(0, k));
      images = picks.length;
      const picked = selectRows(train, picks.sort((a, b) => a - b));
      const [fitRows, testRows] = standardize(picked, [picked, test]) as [LabelledRows, LabelledRows];
      const fit = fitLogisticRegression(fitRows, classes, { lambda, maxIter: options.maxIter });
      for (const [kk, acc] of Object.entries(scoreTopK(fit, testRows, ks))) (per[Number(kk)] ??= []).push(acc);
    }
    const topK: Record<number, MeanStd> = {};
    for (const [kk, runs] of Object.entries(per)) topK[Number(kk)] = meanStd(runs);
    return { shots: k, images, topK };
  });
}
