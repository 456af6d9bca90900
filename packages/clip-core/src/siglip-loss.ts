import * as tf from '@tensorflow/tfjs-core';
import { checkInputs, checkPairs } from './loss-checks.js';
import { clipLogits, type LossOptions } from './loss.js';
import { ShapeError } from './errors.js';

/**
 * SigLIP (Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training"; open_clip's SigLipLoss): every
 * image–text pair of the batch is an independent binary problem, logits = exp(t')·cos + b, label +1 for a
 * positive pair and −1 otherwise, loss = −Σ log σ(label · logit) / N. The learnable bias starts at −10 so
 * the many negatives do not dominate the first steps.
 */

/** The paper's initial LOG temperature t' (scale 10) and bias. */
export const SIGLIP_LOGIT_SCALE_INIT = Math.log(10);
export const SIGLIP_LOGIT_BIAS_INIT = -10;

/**
 * Sigmoid logits [N, M] = min(exp(logitScale), 100) · cos(img, txt) + logitBias. Caller owns the result.
 */
export function siglipLogits(
  imageEmbeds: tf.Tensor2D,
  textEmbeds: tf.Tensor2D,
  logitScale: tf.Tensor,
  logitBias: tf.Tensor,
): tf.Tensor2D {
  checkBias(logitBias, 'siglipLogits');
  return tf.tidy(() => {
    const { logitsPerImage } = clipLogits(imageEmbeds, textEmbeds, logitScale);
    return tf.add(logitsPerImage, tf.reshape(logitBias, [])) as tf.Tensor2D;
  });
}

/**
 * The SigLIP loss of a batch of N pairs (positives: the diagonal, or `options.positives`). `logitScale` is
 * the LOG temperature, `logitBias` the additive bias (both scalars). Returns a new scalar owned by the
 * caller; does not sync.
 */
export function siglipLoss(
  imageEmbeds: tf.Tensor2D,
  textEmbeds: tf.Tensor2D,
  logitScale: tf.Tensor,
  logitBias: tf.Tensor,
  options: LossOptions = {},
): tf.Scalar {
  checkInputs(imageEmbeds, textEmbeds, logitScale, 'siglipLoss');
  const n = checkPairs(imageEmbeds, textEmbeds, options.positives, 'siglipLoss');
  return tf.tidy(() => {
    const logits = siglipLogits(imageEmbeds, textEmbeds, logitScale, logitBias);
    const positives = options.positives ?? tf.eye(n);
    const labels = tf.sub(tf.mul(positives, 2), 1);
    const z = tf.mul(labels, logits);
    // −log σ(z) = softplus(−z) = max(−z, 0) + log(1 + exp(−|z|)): stable for large |z|, and built from
    // kernels every backend has (with gradients).
    const nll = tf.add(tf.relu(tf.neg(z)), tf.log(tf.add(1, tf.exp(tf.neg(tf.abs(z))))));
    return tf.div(tf.sum(nll), n) as tf.Scalar;
  });
}

function checkBias(logitBias: tf.Tensor, what: string): void {
  if (logitBias.size !== 1) throw new ShapeError(`${what}: logitBias must be a scalar, got shape [${logitBias.shape.join(', ')}]`);
}
