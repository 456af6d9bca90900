import { topKAccuracy, ValueError } from '@clip-ts/core';

// Multinomial logistic regression on frozen embeddings, the classifier of CLIP's linear-probe protocol.
// Plain JS in float64 rather than tfjs: the problem is small (N × D × C with D ≤ 1024), float64 lets the
// optimiser converge tightly enough to match a float64 PyTorch reference, and nothing here owns a tensor.
// L-BFGS is written out because npm has no maintained implementation; the objective is smooth and strictly
// convex, so the textbook two-loop recursion with a backtracking (Armijo) line search is sufficient.

/** A row-major [count, dim] feature matrix with one label per row. No tensors. */
export interface LabelledRows {
  data: ArrayLike<number>;
  count: number;
  dim: number;
  labels: readonly number[];
}

export interface LogisticOptions {
  /** L2 strength λ in `mean cross-entropy + λ/2 · ‖W‖²` (the bias is not penalised). */
  lambda: number;
  /** L-BFGS iterations at most (default 500). */
  maxIter?: number;
  /** Stop when the largest gradient component is below this (default 1e-7). */
  tol?: number;
  /** Start from these parameters (warm start along a λ grid); layout as {@link LogisticModel}. */
  init?: LogisticModel;
}

/** Fitted parameters: `weights` [classes, dim] row-major, `bias` [classes]. Plain arrays, owned by the caller. */
export interface LogisticModel {
  classes: number;
  dim: number;
  weights: Float64Array;
  bias: Float64Array;
}

export interface LogisticFit extends LogisticModel {
  lambda: number;
  /** Objective at the solution (mean cross-entropy + λ/2 ‖W‖²). */
  loss: number;
  iterations: number;
  converged: boolean;
}

function checkRows(rows: LabelledRows, classes: number, what: string): void {
  if (rows.count <= 0) throw new ValueError(`${what}: no rows`);
  if (rows.data.length !== rows.count * rows.dim) throw new ValueError(`${what}: data has ${rows.data.length} values, expected ${rows.count} × ${rows.dim}`);
  if (rows.labels.length !== rows.count) throw new ValueError(`${what}: ${rows.labels.length} labels for ${rows.count} rows`);
  const bad = rows.labels.findIndex((l) => !Number.isInteger(l) || l < 0 || l >= classes);
  if (bad >= 0) throw new ValueError(`${what}: label ${rows.labels[bad]} of row ${bad} is not in [0, ${classes})`);
}

/** Class scores (logits) of every row: [count, classes] row-major. */
export function logits(model: LogisticModel, rows: Pick<LabelledRows, 'data' | 'count' | 'dim'>): Float64Array {
  if (rows.dim !== model.dim) throw new ValueError(`logistic model expects ${model.dim}-dim features, got ${rows.dim}`);
  const { classes, dim, weights, bias } = model;
  const out = new Float64Array(rows.count * classes);
  for (let i = 0; i < rows.count; i++) {
    const off = i * dim;
    for (let c = 0; c < classes; c++) {
      let s = bias[c] as number;
      const w = c * dim;
      for (let j = 0; j < dim; j++) s += (weights[w + j] as number) * (rows.data[off + j] as number);
      out[i * classes + c] = s;
    }
  }
  return out;
}

/**
 * Objective and gradient at `theta` = [W (classes × dim), b (classes)]. Writes the gradient into `grad`.
 * Softmax is shifted by the row maximum so large logits (weakly regularised, separable data) stay finite.
 */
function objective(theta: Float64Array, grad: Float64Array, rows: LabelledRows, classes: number, lambda: number): number {
  const { dim, count } = rows;
  const nw = classes * dim;
  grad.fill(0);
  const z = new Float64Array(classes);
  let loss = 0;
  for (let i = 0; i < count; i++) {
    const off = i * dim;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = theta[nw + c] as number;
      const w = c * dim;
      for (let j = 0; j < dim; j++) s += (theta[w + j] as number) * (rows.data[off + j] as number);
      z[c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp((z[c] as number) - max);
      z[c] = e;
      sum += e;
    }
    const y = rows.labels[i] as number;
    loss += Math.log(sum) - Math.log(z[y] as number);
    for (let c = 0; c < classes; c++) {
      const r = (z[c] as number) / sum - (c === y ? 1 : 0);
      if (r === 0) continue;
      const w = c * dim;
      for (let j = 0; j < dim; j++) grad[w + j] = (grad[w + j] as number) + r * (rows.data[off + j] as number);
      grad[nw + c] = (grad[nw + c] as number) + r;
    }
  }
  let reg = 0;
  for (let k = 0; k < theta.length; k++) {
    grad[k] = (grad[k] as number) / count;
    if (k < nw) {
      const t = theta[k] as number;
      reg += t * t;
      grad[k] = (grad[k] as number) + lambda * t;
    }
  }
  return loss / count + 0.5 * lambda * reg;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}

/**
 * Fit multinomial logistic regression by full-batch L-BFGS (memory 10). Deterministic: the same rows and
 * options give the same weights. Returns plain arrays; owns no tensors.
 */
export function fitLogisticRegression(rows: LabelledRows, classes: number, options: LogisticOptions): LogisticFit {
  checkRows(rows, classes, 'logistic regression');
  if (!(options.lambda >= 0) || !Number.isFinite(options.lambda)) throw new ValueError(`logistic regression: lambda must be a finite number ≥ 0, got ${options.lambda}`);
  const { lambda } = options;
  const maxIter = options.maxIter ?? 500;
  const tol = options.tol ?? 1e-7;
  const nw = classes * rows.dim;
  const n = nw + classes;
  const theta = new Float64Array(n);
  if (options.init) {
    if (options.init.classes !== classes || options.init.dim !== rows.dim) throw new ValueError('logistic regression: init has the wrong shape');
    theta.set(options.init.weights, 0);
    theta.set(options.init.bias, nw);
  }
  const grad = new Float64Array(n);
  let f = objective(theta, grad, rows, classes, lambda);
  const memory = 10;
  const ss: Float64Array[] = [];
  const ys: Float64Array[] = [];
  const rhos: number[] = [];
  const dir = new Float64Array(n);
  const next = new Float64Array(n);
  const nextGrad = new Float64Array(n);
  let iterations = 0;
  let converged = maxAbs(grad) < tol;
  while (!converged && iterations < maxIter) {
    iterations++;
    // Two-loop recursion: dir = -H·grad with H the L-BFGS inverse-Hessian estimate.
    for (let k = 0; k < n; k++) dir[k] = -(grad[k] as number);
    const alphas: number[] = [];
    for (let m = ss.length - 1; m >= 0; m--) {
      const a = (rhos[m] as number) * dot(ss[m] as Float64Array, dir);
      alphas[m] = a;
      const y = ys[m] as Float64Array;
      for (let k = 0; k < n; k++) dir[k] = (dir[k] as number) - a * (y[k] as number);
    }
    if (ss.length > 0) {
      const last = ss.length - 1;
      const gamma = dot(ss[last] as Float64Array, ys[last] as Float64Array) / dot(ys[last] as Float64Array, ys[last] as Float64Array);
      for (let k = 0; k < n; k++) dir[k] = (dir[k] as number) * gamma;
    }
    for (let m = 0; m < ss.length; m++) {
      const b = (rhos[m] as number) * dot(ys[m] as Float64Array, dir);
      const s = ss[m] as Float64Array;
      const a = alphas[m] as number;
      for (let k = 0; k < n; k++) dir[k] = (dir[k] as number) + (a - b) * (s[k] as number);
    }
    let slope = dot(dir, grad);
    if (!(slope < 0)) {
      // The estimate lost positive definiteness (round-off): restart from steepest descent.
      ss.length = 0;
      ys.length = 0;
      rhos.length = 0;
      for (let k = 0; k < n; k++) dir[k] = -(grad[k] as number);
      slope = dot(dir, grad);
    }
    // First step without curvature information: unit length, as the Hessian scale is unknown.
    let step = ss.length === 0 ? Math.min(1, 1 / Math.sqrt(-slope)) : 1;
    let fNext = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let k = 0; k < n; k++) next[k] = (theta[k] as number) + step * (dir[k] as number);
      fNext = objective(next, nextGrad, rows, classes, lambda);
      if (fNext <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fNext <= f)) break; // no descent possible at float64 precision: we are at the minimum
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      s[k] = (next[k] as number) - (theta[k] as number);
      y[k] = (nextGrad[k] as number) - (grad[k] as number);
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      ss.push(s);
      ys.push(y);
      rhos.push(1 / sy);
      if (ss.length > memory) {
        ss.shift();
        ys.shift();
        rhos.shift();
      }
    }
    const fPrev = f;
    theta.set(next);
    grad.set(nextGrad);
    f = fNext;
    converged = maxAbs(grad) < tol || fPrev - f <= 1e-15 * Math.max(1, Math.abs(f));
  }
  return { classes, dim: rows.dim, weights: theta.slice(0, nw), bias: theta.slice(nw), lambda, loss: f, iterations, converged };
}

/** Mean cross-entropy (without the penalty) of `model` on `rows`. */
export function crossEntropy(model: LogisticModel, rows: LabelledRows): number {
  checkRows(rows, model.classes, 'cross-entropy');
  const z = logits(model, rows);
  let loss = 0;
  for (let i = 0; i < rows.count; i++) {
    let max = -Infinity;
    for (let c = 0; c < model.classes; c++) max = Math.max(max, z[i * model.classes + c] as number);
    let sum = 0;
    for (let c = 0; c < model.classes; c++) sum += Math.exp((z[i * model.classes + c] as number) - max);
    loss += Math.log(sum) + max - (z[i * model.classes + (rows.labels[i] as number)] as number);
  }
  return loss / rows.count;
}

/** Top-k accuracy of a [count, classes] row-major score matrix, by core's rule (ties count as hits). */
export function topKFromScores(scores: Float64Array, classes: number, labels: readonly number[], k: number): number {
  const rows = Array.from({ length: labels.length }, (_, i) => scores.subarray(i * classes, (i + 1) * classes));
  return topKAccuracy(rows, labels, k);
}
