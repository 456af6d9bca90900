import * as tf from '@tensorflow/tfjs-core';

/**
 * Shared building-block ops for towers and heads. All return NEW tensors owned by the caller and never
 * dispose their inputs. Weights use tfjs layout: a dense kernel is [in, out].
 */

/** y = x·W + b over the last axis; x may have any rank ≥ 2. */
export function linear(x: tf.Tensor, kernel: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1] as number;
    const outDim = kernel.shape[1];
    const lead = x.shape.slice(0, -1);
    const x2 = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inDim]) as tf.Tensor2D;
    let y: tf.Tensor = tf.matMul(x2, kernel);
    if (bias) y = tf.add(y, bias);
    return x.rank === 2 ? y : tf.reshape(y, [...lead, outDim]);
  });
}

/** LayerNorm over the last axis with affine gamma/beta (PyTorch semantics: biased variance). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const { mean, variance } = tf.moments(x, axis, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, gamma), beta);
  });
}

/** Exact GELU: 0.5·x·(1 + erf(x/√2)), as PyTorch's nn.GELU() and HF's "gelu". */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}
