import * as tf from '@tensorflow/tfjs-core';
import { topKAccuracy, ValueError } from '@clip-ts/core';

// Multinomial logistic regression on frozen embeddings, the classifier of CLIP's linear-probe protocol.
// The optimiser (L-BFGS) runs in float64 JS. The objective has two engines: plain JS in float64 for small
// problems (exact enough to match a float64 PyTorch reference tightly), and tfjs matmuls in float32 for
// large ones (CIFAR's 50 000 × 512 × 100 is seconds per pass in JS, milliseconds on a tfjs backend); the
// penalty and the optimiser state stay float64 either way. L-BFGS is written out because npm has no
// maintained implementation; the objective is smooth and strictly convex, so the textbook two-loop
// recursion with a backtracking (Armijo) line search is sufficient.

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
  /**
   * Where the data term is computed: `float64` (plain JS), `tensor` (tfjs, float32), or `auto` (default):
   * tensor once count × dim × classes exceeds {@link TENSOR_ENGINE_THRESHOLD}.
   */
  engine?: 'auto' | 'float64' | 'tensor';
}

/** Problem size (count × dim × classes) above which `auto` computes the data term with tfjs. */
export const TENSOR_ENGINE_THRESHOLD = 2e7;

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

/** Features and labels as monomorphic typed arrays, so the hot loops below compile to tight machine code. */
interface Dense {
  x: Float64Array;
  y: Int32Array;
  count: number;
  dim: number;
}

function dense(rows: LabelledRows): Dense {
  return { x: Float64Array.from(rows.data), y: Int32Array.from(rows.labels), count: rows.count, dim: rows.dim };
}

/** The data term (mean cross-entropy) and its gradient; the penalty is added by the optimiser in float64. */
interface DataTerm {
  evaluate(theta: Float64Array, grad: Float64Array): number;
  dispose(): void;
}

/**
 * Mean cross-entropy and gradient at `theta` = [W (classes × dim), b (classes)], in float64 JS. Softmax is
 * shifted by the row maximum so large logits (weakly regularised, separable data) stay finite.
 */
function jsDataTerm(rows: Dense, classes: number): DataTerm {
  const { dim, count, x, y } = rows;
  const nw = classes * dim;
  const z = new Float64Array(classes);
  return {
    evaluate(theta, grad) {
      grad.fill(0);
      let loss = 0;
      for (let i = 0; i < count; i++) {
        const off = i * dim;
        let max = -Infinity;
        for (let c = 0; c < classes; c++) {
          let s = theta[nw + c]!;
          const w = c * dim;
          for (let j = 0; j < dim; j++) s += theta[w + j]! * x[off + j]!;
          z[c] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let c = 0; c < classes; c++) {
          const e = Math.exp(z[c]! - max);
          z[c] = e;
          sum += e;
        }
        const label = y[i]!;
        loss += Math.log(sum) - Math.log(z[label]!);
        for (let c = 0; c < classes; c++) {
          const r = z[c]! / sum - (c === label ? 1 : 0);
          if (r === 0) continue;
          const w = c * dim;
          for (let j = 0; j < dim; j++) grad[w + j]! += r * x[off + j]!;
          grad[nw + c]! += r;
        }
      }
      for (let k = 0; k < grad.length; k++) grad[k]! /= count;
      return loss / count;
    },
    dispose() {},
  };
}

/**
 * The same data term with tfjs (float32): features and one-hot labels stay on the backend for the whole
 * fit; each evaluation uploads the parameters and reads back the loss and the gradient. Owns its tensors
 * until `dispose`.
 */
function tensorDataTerm(rows: Dense, classes: number): DataTerm {
  const { dim, count } = rows;
  const nw = classes * dim;
  const x = tf.tensor2d(Float32Array.from(rows.x), [count, dim]);
  // Both products as plain (untransposed) matmuls: wasm runs transposed ones slowly (DEVELOPERS.md).
  const xT = tf.transpose(x);
  const yOneHot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(rows.y, 'int32'), classes), 'float32'));
  return {
    evaluate(theta, grad) {
      const [lossT, gW, gB] = tf.tidy(() => {
        const wT = tf.transpose(tf.tensor2d(Float32Array.from(theta.subarray(0, nw)), [classes, dim]));
        const b = tf.tensor1d(Float32Array.from(theta.subarray(nw)));
        const z = tf.add(tf.matMul(x, wT), b);
        const lse = tf.logSumExp(z, 1, true);
        const ce = tf.mean(tf.sub(lse, tf.sum(tf.mul(z, yOneHot), 1, true)));
        const r = tf.div(tf.sub(tf.exp(tf.sub(z, lse)), yOneHot), count);
        return [ce, tf.transpose(tf.matMul(xT, r)), tf.sum(r, 0)];
      });
      try {
        grad.set(gW!.dataSync(), 0);
        grad.set(gB!.dataSync(), nw);
        return lossT!.dataSync()[0]!;
      } finally {
        tf.dispose([lossT!, gW!, gB!]);
      }
    },
    dispose() {
      tf.dispose([x, xT, yOneHot]);
    },
  };
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
 * options give the same weights. Returns plain arrays; the tensor engine frees its tensors before returning.
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
  const d = dense(rows);
  const engine = options.engine ?? 'auto';
  const useTensors = engine === 'tensor' || (engine === 'auto' && d.count * d.dim * classes > TENSOR_ENGINE_THRESHOLD);
  const data = useTensors ? tensorDataTerm(d, classes) : jsDataTerm(d, classes);
  // Objective = data term + λ/2 ‖W‖², the penalty and its gradient in float64 whatever the engine.
  const objective = (t: Float64Array, g: Float64Array): number => {
    const loss = data.evaluate(t, g);
    let reg = 0;
    for (let k = 0; k < nw; k++) {
      reg += t[k]! * t[k]!;
      g[k]! += lambda * t[k]!;
    }
    return loss + 0.5 * lambda * reg;
  };
  try {
    // float32 losses cannot resolve relative changes much below 1e-7: stop there instead of line-searching noise.
    return lbfgs(theta, grad, objective, { maxIter, tol, ftol: useTensors ? 1e-8 : 1e-15, classes, dim: rows.dim, lambda });
  } finally {
    data.dispose();
  }
}

function lbfgs(
  theta: Float64Array,
  grad: Float64Array,
  objective: (t: Float64Array, g: Float64Array) => number,
  opts: { maxIter: number; tol: number; ftol: number; classes: number; dim: number; lambda: number },
): LogisticFit {
  const { maxIter, tol, classes, lambda } = opts;
  const n = theta.length;
  const nw = classes * opts.dim;
  let f = objective(theta, grad);
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
      fNext = objective(next, nextGrad);
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
    converged = maxAbs(grad) < tol || fPrev - f <= opts.ftol * Math.max(1, Math.abs(f));
  }
  return { classes, dim: opts.dim, weights: theta.slice(0, nw), bias: theta.slice(nw), lambda, loss: f, iterations, converged };
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
