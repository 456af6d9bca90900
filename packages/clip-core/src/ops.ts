import * as tf from '@tensorflow/tfjs-core';

/**
 * Shared building-block ops for towers and heads. All return NEW tensors owned by the caller and never
 * dispose their inputs. Weights use tfjs layout: a dense kernel is [in, out].
 *
 * Each op carries a hand-written gradient (tf.customGrad) because autodiff of the naive formulation is
 * slow where it matters: the matMul gradient multiplies by transposed operands (`transposeA`/`transposeB`),
 * which tfjs-backend-wasm runs through a naive loop 10–45× slower than a plain matMul, and the LayerNorm /
 * GELU tapes keep a dozen intermediates per call. Here every backward matMul is plain, on an explicitly
 * transposed operand (a cheap copy), and the LayerNorm / GELU backward passes are the closed forms.
 * Inputs may be tf.Variables: customGrad records them as inputs, so tf.variableGrads reaches them.
 */

/** Flatten to [rows, lastDim]; a free reshape. */
function as2d(x: tf.Tensor): tf.Tensor2D {
  const last = x.shape[x.rank - 1] as number;
  return x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, last]);
}

/**
 * aᵀ·b for a [m, p] and b [m, q] with plain matMuls only. wasm's XNNPACK matmul packs its second operand
 * on every call, and packing a tall [m, q] activation costs more than the product saves, so the smaller
 * of the two goes second: (bᵀ·a)ᵀ when p ≤ q (the final transpose is only p·q), else aᵀ·b.
 */
function matMulTA(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return a.shape[1] <= b.shape[1]
    ? (tf.transpose(tf.matMul(tf.transpose(b), a)) as tf.Tensor2D)
    : tf.matMul(tf.transpose(a), b);
}

type Save = (tensors: tf.Tensor[]) => void;
/** tfjs types customGrad's f loosely (inputs and save share one rest parameter); ours are precise. */
type GradFunc = Parameters<typeof tf.customGrad>[0];

function linearBackward(dy: tf.Tensor, x: tf.Tensor, kernel: tf.Tensor2D): [tf.Tensor, tf.Tensor2D, tf.Tensor2D] {
  const dy2 = as2d(dy);
  const dx = tf.reshape(tf.matMul(dy2, tf.transpose(kernel)), x.shape);
  const dKernel = matMulTA(as2d(x), dy2);
  return [dx, dKernel, dy2];
}

const linearNoBias = tf.customGrad(((x: tf.Tensor, kernel: tf.Tensor2D, save: Save) => {
  save([x, kernel]);
  const lead = x.shape.slice(0, -1);
  const value = tf.reshape(tf.matMul(as2d(x), kernel), [...lead, kernel.shape[1]]);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [dx, dKernel] = linearBackward(dy, saved[0] as tf.Tensor, saved[1] as tf.Tensor2D);
      return [dx, dKernel];
    },
  };
}) as unknown as GradFunc);

const linearWithBias = tf.customGrad(((x: tf.Tensor, kernel: tf.Tensor2D, bias: tf.Tensor1D, save: Save) => {
  save([x, kernel]);
  const lead = x.shape.slice(0, -1);
  const value = tf.reshape(tf.add(tf.matMul(as2d(x), kernel), bias), [...lead, kernel.shape[1]]);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [dx, dKernel, dy2] = linearBackward(dy, saved[0] as tf.Tensor, saved[1] as tf.Tensor2D);
      return [dx, dKernel, tf.sum(dy2, 0)];
    },
  };
}) as unknown as GradFunc);

/** y = x·W + b over the last axis; x may have any rank ≥ 2. */
export function linear(x: tf.Tensor, kernel: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  return bias ? linearWithBias(x, kernel, bias) : linearNoBias(x, kernel);
}

const layerNormOp = (eps: number) =>
  tf.customGrad(((x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, save: Save) => {
    const axis = x.rank - 1;
    const centred = tf.sub(x, tf.mean(x, axis, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axis, true), eps));
    const normed = tf.mul(centred, rstd);
    save([normed, rstd, gamma]);
    return {
      value: tf.add(tf.mul(normed, gamma), beta),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xHat, r, g] = saved as [tf.Tensor, tf.Tensor, tf.Tensor1D];
        const dy2 = as2d(dy);
        const dGamma = tf.sum(tf.mul(dy2, as2d(xHat)), 0);
        const dBeta = tf.sum(dy2, 0);
        // dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·γ, means over the normalised axis.
        const dxHat = tf.mul(dy, g);
        const meanD = tf.mean(dxHat, axis, true);
        const meanDX = tf.mean(tf.mul(dxHat, xHat), axis, true);
        const dx = tf.mul(tf.sub(tf.sub(dxHat, meanD), tf.mul(xHat, meanDX)), r);
        return [dx, dGamma, dBeta];
      },
    };
  }) as unknown as GradFunc);

const layerNormByEps = new Map<number, (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor>();

/** LayerNorm over the last axis with affine gamma/beta (PyTorch semantics: biased variance). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  let op = layerNormByEps.get(eps);
  if (!op) {
    op = layerNormOp(eps);
    layerNormByEps.set(eps, op);
  }
  return op(x, gamma, beta);
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

const geluOp = tf.customGrad(((x: tf.Tensor, save: Save) => {
  const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
  save([x, cdf]);
  return {
    value: tf.mul(x, cdf),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, phi] = saved as [tf.Tensor, tf.Tensor];
      // d/dx x·Φ(x) = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(xs), -0.5)), INV_SQRT_2PI);
      return [tf.mul(dy, tf.add(phi, tf.mul(xs, pdf)))];
    },
  };
}) as unknown as GradFunc);

/** Exact GELU: 0.5·x·(1 + erf(x/√2)), as PyTorch's nn.GELU() and HF's "gelu". */
export function gelu(x: tf.Tensor): tf.Tensor {
  return geluOp(x);
}
