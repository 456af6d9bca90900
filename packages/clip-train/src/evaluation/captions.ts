import * as tf from '@tensorflow/tfjs-core';
import type { CaptionTokenizer, CLIPModel } from '@clip-ts/core';
import { allCaptions, type CaptionBatch, type ImageCaptionDataset } from '@clip-ts/data';
import type { CaptionEmbeddings, RetrievalOptions } from './split.js';

/**
 * Eval-mode embeddings of EVERY caption of `dataset` (all captions of each image, in dataset order),
 * `batchSize` captions at a time. Caller owns `embeds`.
 */
export function encodeAllCaptions(
  model: CLIPModel,
  dataset: ImageCaptionDataset,
  o: { tokenizer: CaptionTokenizer; maxLength: number; batchSize: number },
): CaptionEmbeddings {
  const { texts, imageIndex } = allCaptions(dataset);
  const parts: tf.Tensor2D[] = [];
  try {
    for (let start = 0; start < texts.length; start += o.batchSize) {
      const enc = o.tokenizer.encode(texts.slice(start, start + o.batchSize), o.maxLength);
      parts.push(
        tf.tidy(() =>
          model.encodeTexts({
            inputIds: tf.tensor2d(enc.inputIds, [enc.batchSize, enc.seqLength], 'int32'),
            attentionMask: tf.tensor2d(enc.attentionMask, [enc.batchSize, enc.seqLength], 'int32'),
          }),
        ),
      );
    }
    return { embeds: tf.concat(parts) as tf.Tensor2D, imageIndex };
  } finally {
    tf.dispose(parts);
  }
}

/** Full-split retrieval options for a model evaluated on a CaptionLoader's batches of `dataset`. */
export function captionRetrieval(
  model: CLIPModel,
  dataset: ImageCaptionDataset,
  o: { tokenizer: CaptionTokenizer; maxLength: number; batchSize: number; ks: readonly number[] },
): RetrievalOptions<CaptionBatch> {
  return {
    ks: o.ks,
    numImages: dataset.length,
    imageIndices: (b) => b.indices,
    captions: () => Promise.resolve(encodeAllCaptions(model, dataset, o)),
  };
}
