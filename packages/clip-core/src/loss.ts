import * as tf from '@tensorflow/tfjs-core';
import { ValueError } from './errors.js';
import { checkInputs, checkPairs } from './loss-checks.js';

/**
 * The CLIP objective (as in open_clip's loss.py): L2-normalise both embeddings, logits = scale · img · txtᵀ
 * with scale = exp(logitScale) clamped to ≤ 100, and the symmetric cross-entropy whose targets are the
 * diagonal (the i-th image goes with the i-th caption).
 *
 * Finiteness: NaN/Inf in the logits always makes the loss non-finite, so rather than a separate check on the
 * logits (an extra GPU→CPU sync per step), callers pass the loss value they read anyway to `assertFinite`.
 */

/** Cap on exp(logitScale), as in CLIP: stops the temperature from collapsing. */
export const MAX_LOGIT_SCALE = 100;

// A type alias (not an interface) so it is a tf.TensorContainer and can be returned from tf.tidy.
export type ClipLogits = {
  /** [N, M]: row i scores image i against every text. */
  logitsPerImage: tf.Tensor2D;
  /** [M, N]: the transpose. */
  logitsPerText: tf.Tensor2D;
};

/** x / ‖x‖ over the last axis; the epsilon (as F.normalize) keeps an all-zero row finite. Caller owns. */
export function l2Normalize<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), -1, true), 1e-24))) as T);
}

/** Scaled cosine logits from (unnormalised) embeddings. Returns new tensors owned by the caller. */
export function clipLogits(
  imageEmbeds: tf.Tensor2D,
  textEmbeds: tf.Tensor2D,
  logitScale: tf.Tensor,
): ClipLogits {
  checkInputs(imageEmbeds, textEmbeds, logitScale, 'clipLogits');
  return tf.tidy(() => {
    const scale = tf.minimum(tf.exp(tf.reshape(logitScale, [])), MAX_LOGIT_SCALE);
    const logitsPerImage = tf.mul(
      tf.matMul(l2Normalize(imageEmbeds), l2Normalize(textEmbeds), false, true),
      scale,
    ) as tf.Tensor2D;
    return { logitsPerImage, logitsPerText: tf.transpose(logitsPerImage) };
  });
}

/** Options of the batch losses. */
export interface LossOptions {
  /**
   * [N, N] 0/1 float mask, 1 where image i and text j are a positive pair (its diagonal must be 1; see
   * positiveMask in loss-targets.ts). Absent: the diagonal. Borrowed, not disposed.
   */
  positives?: tf.Tensor2D;
}

/**
 * Symmetric CLIP loss for a batch of N matching pairs: mean(CE(logitsPerImage, targets), CE(logitsPerText,
 * targets)) with the diagonal as targets, or with `positives` the targets spread evenly over each row's
 * (column's) positives. `logitScale` is the LOG temperature parameter. Returns a new scalar owned by the
 * caller; does not sync (see assertFinite for the NaN/Inf check).
 */
export function clipLoss(
  imageEmbeds: tf.Tensor2D,
  textEmbeds: tf.Tensor2D,
  logitScale: tf.Tensor,
  options: LossOptions = {},
): tf.Scalar {
  checkInputs(imageEmbeds, textEmbeds, logitScale, 'clipLoss');
  const n = checkPairs(imageEmbeds, textEmbeds, options.positives, 'clipLoss');
  return tf.tidy(() => {
    const { logitsPerImage } = clipLogits(imageEmbeds, textEmbeds, logitScale);
    const { positives } = options;
    // Diagonal via a mask rather than gather: gather's gradient is missing on wasm.
    const imageTarget = positives ? tf.sum(tf.mul(logitsPerImage, tf.div(positives, tf.sum(positives, 1, true))), 1) : tf.sum(tf.mul(logitsPerImage, tf.eye(n)), 1);
    const textTarget = positives ? tf.sum(tf.mul(logitsPerImage, tf.div(positives, tf.sum(positives, 0, true))), 0) : imageTarget;
    // CE over rows (image→text) and over columns (text→image): no transpose needed.
    const imageLoss = tf.mean(tf.sub(tf.logSumExp(logitsPerImage, 1), imageTarget));
    const textLoss = tf.mean(tf.sub(tf.logSumExp(logitsPerImage, 0), textTarget));
    return tf.mul(tf.add(imageLoss, textLoss), 0.5) as tf.Scalar;
  });
}

/**
 * Throw a ValueError when `value` (e.g. the loss the trainer has already read) is NaN or ±Inf. `where`
 * says what it is (`loss at epoch 3 step 120`). NaN/Inf anywhere in the logits shows up here.
 */
export function assertFinite(value: number, where: string): void {
  if (!Number.isFinite(value)) {
    throw new ValueError(
      `${where} is ${value}: the logits or embeddings contain NaN/Inf (diverged training: lower the learning rate, check the inputs)`,
    );
  }
}

/** Check every value of a tensor (reads it: one sync; not for hot loops). Does not dispose `t`. */
export async function assertFiniteTensor(t: tf.Tensor, where: string): Promise<void> {
  const values = await t.data();
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i] as number)) {
      throw new ValueError(`${where}: element ${i} of shape [${t.shape.join(', ')}] is ${values[i]} (NaN/Inf)`);
    }
  }
}
