import * as tf from '@tensorflow/tfjs-core';
import type { CLIPModel, TargetMode } from '@clip-ts/core';
import type { CaptionBatch } from '@clip-ts/data';
import { batchPositives } from '../targets.js';
import { findRngs } from '../trainer/rng-state.js';
import type { ChunkedStepSpec } from './chunked-step.js';

/** Rows [start, end) of a batch-major tensor. Caller owns the result. */
function rowSlice<T extends tf.Tensor>(x: T, start: number, end: number): T {
  return tf.slice(x, [start, ...x.shape.slice(1).map(() => 0)], [end - start, ...x.shape.slice(1).map(() => -1)]) as T;
}

/**
 * A CLIPModel's training step as the chunked step sees it: the towers are the two encoders (a frozen one
 * runs in inference mode, as in clipModelTask), the loss side is both projection heads plus the CLIP or
 * SigLIP loss with the batch's targets, on the full batch.
 */
export function clipChunkedSpec(model: CLIPModel, frozen: { vision: boolean; text: boolean }, targets: TargetMode = 'auto'): ChunkedStepSpec<CaptionBatch> {
  const rngs = [...findRngs(model.imageEncoder), ...findRngs(model.textEncoder)];
  const vision = model.imageEncoder.namedVariables().map((nv) => nv.variable);
  const text = model.textEncoder.namedVariables().map((nv) => nv.variable);
  return {
    rows: (b) => b.pixelValues.shape[0],
    towers: [
      {
        forward: (b, s, e) => tf.tidy(() => model.imageEncoder.encode(rowSlice(b.pixelValues, s, e), { training: !frozen.vision })),
        variables: () => vision,
      },
      {
        forward: (b, s, e) =>
          tf.tidy(() => model.textEncoder.encode({ inputIds: rowSlice(b.inputIds, s, e), attentionMask: rowSlice(b.attentionMask, s, e) }, { training: !frozen.text })),
        variables: () => text,
      },
    ],
    loss: ([img, txt], b) =>
      tf.tidy(() => {
        const positives = batchPositives(targets, b);
        return model.lossFromFeatures(img as tf.Tensor2D, txt as tf.Tensor2D, { training: true, ...(positives ? { positives } : {}) });
      }),
    rngs: () => rngs,
  };
}
