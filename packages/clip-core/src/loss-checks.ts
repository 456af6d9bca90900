import type * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from './errors.js';

// Shape checks shared by the losses (internal: not exported from the package).

export function checkInputs(imageEmbeds: tf.Tensor, textEmbeds: tf.Tensor, logitScale: tf.Tensor, what: string): void {
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

/** N ≥ 1 pairs, and a positives mask (if any) of shape [N, N]; returns N. */
export function checkPairs(imageEmbeds: tf.Tensor2D, textEmbeds: tf.Tensor2D, positives: tf.Tensor | undefined, what: string): number {
  const n = imageEmbeds.shape[0];
  if (n !== textEmbeds.shape[0] || n === 0) {
    throw new ShapeError(`${what}: needs N ≥ 1 matching pairs; got ${n} images and ${textEmbeds.shape[0]} texts`);
  }
  if (positives && (positives.rank !== 2 || positives.shape[0] !== n || positives.shape[1] !== n)) {
    throw new ShapeError(`${what}: positives must be [${n}, ${n}], got [${positives.shape.join(', ')}]`);
  }
  return n;
}
