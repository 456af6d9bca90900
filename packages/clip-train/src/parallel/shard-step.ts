import * as tf from '@tensorflow/tfjs-core';
import { clipLoss, siglipLoss, type CLIPModel } from '@clip-ts/core';

/** One replica's rows of a caption batch (tensors borrowed, not disposed here). */
export interface ShardInputs {
  pixels: tf.Tensor4D;
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
}

/**
 * Publishes this shard's [rows, D] embeddings and returns the whole batch's [B, D] embeddings once every
 * replica has published (an all-gather through shared memory). Returned arrays are the caller's copies.
 */
export type GatherFn = (image: Float32Array, text: Float32Array) => { image: Float32Array; text: Float32Array };

/**
 * The full-batch CLIP/SigLIP loss as seen by one replica (open_clip's gather without grad, local_loss
 * off): its own rows are live tensors from its towers and heads, the other replicas' rows constants. So
 * the gradient of this loss w.r.t. the replica's weights is exactly its shard's share of the full-batch
 * gradient, and summing the replicas' shares gives the single-replica gradient. The loss's own weights
 * (logit scale, bias) get the FULL gradient on every replica: count them once when summing.
 * Call inside tf.variableGrads; returns a new scalar (tidied).
 */
export function shardLoss(
  model: CLIPModel,
  frozen: { vision: boolean; text: boolean },
  shard: ShardInputs | undefined,
  rows: { start: number; end: number; batchSize: number },
  gather: GatherFn,
  positives: tf.Tensor2D | undefined,
): tf.Scalar {
  return tf.tidy(() => {
    const d = model.projectionDim;
    let img: tf.Tensor2D | undefined;
    let txt: tf.Tensor2D | undefined;
    if (shard) {
      // Same modes as clipModelTask: frozen towers in inference mode, heads always training.
      img = model.visualProjection.apply(model.imageEncoder.encode(shard.pixels, { training: !frozen.vision }), { training: true });
      txt = model.textProjection.apply(
        model.textEncoder.encode({ inputIds: shard.inputIds, attentionMask: shard.attentionMask }, { training: !frozen.text }),
        { training: true },
      );
    }
    const all = gather(img ? (img.dataSync() as Float32Array) : new Float32Array(0), txt ? (txt.dataSync() as Float32Array) : new Float32Array(0));
    const full = (own: tf.Tensor2D | undefined, values: Float32Array): tf.Tensor2D => {
      const parts: tf.Tensor2D[] = [];
      if (rows.start > 0) parts.push(tf.tensor2d(values.subarray(0, rows.start * d), [rows.start, d]));
      if (own) parts.push(own);
      if (rows.end < rows.batchSize) parts.push(tf.tensor2d(values.subarray(rows.end * d, rows.batchSize * d), [rows.batchSize - rows.end, d]));
      return parts.length === 1 ? (parts[0] as tf.Tensor2D) : tf.concat(parts, 0);
    };
    const image = full(img, all.image);
    const text = full(txt, all.text);
    const options = positives ? { positives } : {};
    return model.logitBias
      ? siglipLoss(image, text, model.logitScale, model.logitBias, options)
      : clipLoss(image, text, model.logitScale, options);
  });
}
