import * as tf from '@tensorflow/tfjs-core';
import { positiveMask, type TargetMode } from '@clip-ts/core';

/** What a batch must tell the loss about its rows for multi-positive targets. */
export interface BatchRows {
  /** Dataset index of each row's image. */
  indices: readonly number[];
  /** Caption text of each row. */
  captions: readonly string[];
}

/**
 * The [N, N] positives mask of a batch under `config.targets`, or undefined for the plain diagonal (also
 * when no row has a second positive, so such batches train bit for bit as 'diagonal'). Caller owns the
 * tensor (create it inside the loss's tf.tidy).
 */
export function batchPositives(mode: TargetMode, rows: BatchRows): tf.Tensor2D | undefined {
  const mask = positiveMask(mode, rows.indices, rows.captions);
  const n = rows.indices.length;
  return mask ? tf.tensor2d(mask, [n, n]) : undefined;
}
