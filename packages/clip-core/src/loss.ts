import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, ValueError } from './errors.js';

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

function checkInputs(imageEmbeds: tf.Tensor, textEmbeds: tf.Tensor, logitScale: tf.Tensor, what: string): void {
  if (imageEmbeds.rank !== 2 || textEmbeds.rank !== 2) {
    throw new ShapeError(
      `${what}: embeddings must be 2-D [batch, dim]; got image [${imageEmbeds.shape.join(', ')}], text [${textEmbeds.shape.join(', ')}]`,
    );
  }
  if (imageEmbeds.shape[1] !== textEmbeds.shape[1]) {
    throw new ShapeError(
      `${what}: image and text embedding dims differ (${imageEmbeds.shape[1]} vs ${textEmbeds.shape[1]})`,
    );
  }
  if (logitScale.size !== 1) {
    throw new ShapeError(`${what}: logitScale must be a scalar, got shape [${logitScale.shape.join(', ')}]`);
  }
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

/**
 * Symmetric CLIP loss for a batch of N matching pairs: mean(CE(logitsPerImage, diag), CE(logitsPerText,
 * diag)). `logitScale` is the LOG temperature parameter. Returns a new scalar owned by the caller; does not
 * sync (see assertFinite for the NaN/Inf check).
 */
export function clipLoss(imageEmbeds: tf.Tensor2D, textEmbeds: tf.Tensor2D, logitScale: tf.Tensor): tf.Scalar {
  checkInputs(imageEmbeds, textEmbeds, logitScale, 'clipLoss');
  const n = imageEmbeds.shape[0];
  if (n !== textEmbeds.shape[0] || n === 0) {
    throw new ShapeError(`clipLoss: needs N ≥ 1 matching pairs; got ${n} images and ${textEmbeds.shape[0]} texts`);
  }
  return tf.tidy(() => {
    const { logitsPerImage } = clipLogits(imageEmbeds, textEmbeds, logitScale);
    // Diagonal via a mask rather than gather: gather's gradient is missing on wasm.
    const diag = tf.sum(tf.mul(logitsPerImage, tf.eye(n)), 1);
    // CE over rows (image→text) and over columns (text→image): no transpose needed.
    const imageLoss = tf.mean(tf.sub(tf.logSumExp(logitsPerImage, 1), diag));
    const textLoss = tf.mean(tf.sub(tf.logSumExp(logitsPerImage, 0), diag));
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
