import * as tf from '@tensorflow/tfjs-core';

/**
 * Scale gradients so their global L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_: coefficient
 * maxNorm / (norm + 1e-6), clamped to 1). Done with tensors only, so no data is read back to the CPU.
 * Returns NEW tensors (caller owns `grads` and `norm`); the inputs are not disposed.
 */
export function clipByGlobalNorm(grads: readonly tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: tf.Scalar } {
  return tf.tidy(() => {
    const norm = globalNorm(grads);
    const coef = tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1);
    return { grads: grads.map((g) => tf.mul(g, coef)), norm };
  });
}

/** sqrt(Σ‖g‖²) over all tensors, as a NEW scalar the caller owns. */
export function globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    if (grads.length === 0) return tf.scalar(0);
    return tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
  });
}
