import * as tf from '@tensorflow/tfjs-core';
import { checkInputs } from './loss-checks.js';
import { clipLogits, clipLoss, type LossOptions } from './loss.js';
import { ShapeError } from './errors.js';

/**
 * Distillation from a teacher CLIP (open_clip's DistillClipLoss): the student's CLIP loss plus, in each
 * direction, the cross-entropy between the teacher's softmax over its logits and the student's log-softmax
 * over its own, averaged over rows and then over the two directions. Both logit matrices use their model's
 * own temperature, so a teacher's sharper (or softer) distribution is what the student is pulled towards.
 */

// A type alias (not an interface) so it is a tf.TensorContainer and can be returned from tf.tidy.
export type DistillLosses = {
  /** The student's CLIP loss (open_clip's contrastive_loss). */
  contrastive: tf.Scalar;
  /** The distillation term (open_clip's distill_loss), unweighted. */
  distill: tf.Scalar;
};

/** −mean_i Σ_j softmax(teacher)_ij · log_softmax(student)_ij over rows (open_clip's dist_loss). Caller owns. */
export function softCrossEntropy(teacherLogits: tf.Tensor2D, studentLogits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(tf.softmax(teacherLogits), tf.logSoftmax(studentLogits)), 1))) as tf.Scalar);
}

/**
 * Both terms of DistillClipLoss for a batch of N pairs; the training loss is `contrastive + weight · distill`
 * (open_clip sums them with weight 1). Teacher embeddings and LOG scale are constants here: gradients flow
 * only into the student's. `options.positives` applies to the contrastive term only (the teacher's soft
 * targets already spread over near-duplicates). Caller owns both scalars; does not sync.
 */
export function distillClipLoss(
  imageEmbeds: tf.Tensor2D,
  textEmbeds: tf.Tensor2D,
  logitScale: tf.Tensor,
  teacherImageEmbeds: tf.Tensor2D,
  teacherTextEmbeds: tf.Tensor2D,
  teacherLogitScale: tf.Tensor,
  options: LossOptions = {},
): DistillLosses {
  checkInputs(teacherImageEmbeds, teacherTextEmbeds, teacherLogitScale, 'distillClipLoss (teacher)');
  if (teacherImageEmbeds.shape[0] !== imageEmbeds.shape[0] || teacherTextEmbeds.shape[0] !== textEmbeds.shape[0]) {
    throw new ShapeError(
      `distillClipLoss: the teacher's embeddings have ${teacherImageEmbeds.shape[0]} images and ${teacherTextEmbeds.shape[0]} texts, the student's ${imageEmbeds.shape[0]} and ${textEmbeds.shape[0]}`,
    );
  }
  const contrastive = clipLoss(imageEmbeds, textEmbeds, logitScale, options);
  const distill = tf.tidy(() => {
    const student = clipLogits(imageEmbeds, textEmbeds, logitScale);
    const teacher = clipLogits(teacherImageEmbeds, teacherTextEmbeds, teacherLogitScale);
    const perImage = softCrossEntropy(teacher.logitsPerImage, student.logitsPerImage);
    const perText = softCrossEntropy(teacher.logitsPerText, student.logitsPerText);
    return tf.mul(tf.add(perImage, perText), 0.5) as tf.Scalar;
  });
  return { contrastive, distill };
}
