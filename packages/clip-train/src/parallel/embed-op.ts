import * as tf from '@tensorflow/tfjs-core';
import type { CLIPModel } from '@clip-ts/core';

/**
 * What a forward-only pass over the replicas computes per row: L2-normalised embeddings (CLIPModel
 * encodeImages / encodeTexts, as `clip embed` and zero-shot use them) or the towers' pooled features in
 * inference mode (what the frozen-feature cache stores).
 */
export type EmbedKind = 'images' | 'texts' | 'imageFeatures' | 'textFeatures';

/** Rows of one request: pixels [n, 3, H, W] for the image kinds, token ids and mask [n, seq] for the text ones. */
export type EmbedRows =
  | { pixels: Float32Array; shape: [number, number, number, number] }
  | { inputIds: Int32Array; attentionMask: Int32Array; shape: [number, number] };

/** Floats per output row of `kind`. */
export function embedWidth(model: CLIPModel, kind: EmbedKind): number {
  if (kind === 'imageFeatures') return model.imageEncoder.hiddenSize;
  if (kind === 'textFeatures') return model.textEncoder.hiddenSize;
  return model.projectionDim;
}

/**
 * One replica's share: the same model calls as the single-process paths, so each row gets the same
 * floats it would get there (a row's result never depends on the other rows of its batch). Returns a
 * NEW Float32Array (the caller's; no tensor is left behind).
 */
export function embedRows(model: CLIPModel, kind: EmbedKind, rows: EmbedRows): Float32Array {
  const out = tf.tidy(() => {
    if ('pixels' in rows) {
      const pixels = tf.tensor4d(rows.pixels, rows.shape);
      return kind === 'images' ? model.encodeImages(pixels) : model.imageEncoder.encode(pixels, { training: false });
    }
    const input = { inputIds: tf.tensor2d(rows.inputIds, rows.shape, 'int32'), attentionMask: tf.tensor2d(rows.attentionMask, rows.shape, 'int32') };
    return kind === 'texts' ? model.encodeTexts(input) : model.textEncoder.encode(input, { training: false });
  });
  try {
    // A copy: dataSync may hand out the backend's own storage (cpu), and the result leaves this thread.
    return (out.dataSync() as Float32Array).slice();
  } finally {
    out.dispose();
  }
}
