import * as tf from '@tensorflow/tfjs-core';

/** torch.finfo(torch.float32).min: what HF puts on padded keys before the softmax. */
export const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * Additive key-padding bias [batch, 1, 1, seqLen] from an attention mask [batch, seqLen] (1 = token,
 * 0 = padding): 0 where attended, float32 min where masked. Adding it to the scores equals HF's
 * `masked_fill(mask == 0, finfo.min)`: a score plus min rounds to min, whose exp underflows to 0.
 * Caller owns the result.
 */
export function keyPaddingBias(attentionMask: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, l] = attentionMask.shape;
    const masked = tf.equal(attentionMask, 0);
    const bias = tf.where(masked, tf.fill([b, l], FLOAT32_MIN), tf.zeros([b, l]));
    return tf.reshape(bias, [b, 1, 1, l]) as tf.Tensor4D;
  });
}

export interface AttentionOptions {
  /** Added to the scores before the softmax; broadcasts to [batch, heads, seqQ, seqK] (see keyPaddingBias). */
  bias?: tf.Tensor;
  /** Applied to the attention probabilities (attention dropout) in training. */
  dropout?: (probs: tf.Tensor) => tf.Tensor;
}

/**
 * The multi-head attention core shared by the towers: split heads, softmax(q·kᵀ/√d_head + bias)·v,
 * merge heads. q, k, v are the projected [batch, seq, hidden] activations; returns the context
 * [batch, seqQ, hidden] before the output projection. Caller owns the result; inputs are not disposed.
 *
 * q is scaled before the product (as DistilBERT does; ViT scales the scores after, which is the same up
 * to float rounding) because q has seq·d_head elements per head and the scores seq². k is transposed
 * explicitly rather than with matMul's transposeB, which wasm runs many times slower in batched form.
 */
export function multiHeadAttention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  numHeads: number,
  options: AttentionOptions = {},
): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, seqQ, hidden] = q.shape;
    const seqK = k.shape[1];
    const dHead = hidden / numHeads;
    // [b, s, h, d] → [b, h, s, d] for q and v; [b, h, d, s] for k so the product needs no transposeB.
    const qh = tf.transpose(tf.reshape(tf.mul(q, 1 / Math.sqrt(dHead)), [batch, seqQ, numHeads, dHead]), [0, 2, 1, 3]);
    const kt = tf.transpose(tf.reshape(k, [batch, seqK, numHeads, dHead]), [0, 2, 3, 1]);
    const vh = tf.transpose(tf.reshape(v, [batch, seqK, numHeads, dHead]), [0, 2, 1, 3]);
    let scores: tf.Tensor = tf.matMul(qh, kt);
    if (options.bias) scores = tf.add(scores, options.bias);
    let probs = tf.softmax(scores, -1);
    if (options.dropout) probs = options.dropout(probs);
    const ctx = tf.matMul(probs, vh); // [b, h, seqQ, d]
    return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [batch, seqQ, hidden]) as tf.Tensor3D;
  });
}
