import * as tf from '@tensorflow/tfjs-core';
import { retrievalRecallAtK, type CaptionTokenizer, type CLIPModel, type ImageProcessor, type RecallAtK } from '@clip-ts/core';
import { allCaptions, CaptionLoader, type ImageCaptionDataset } from '@clip-ts/data';

export interface SplitRetrieval {
  images: number;
  captions: number;
  recall: RecallAtK[];
}

/**
 * Full-split retrieval: embed every image and EVERY caption of the split (eval mode), then Recall@K in
 * both directions (core's retrievalRecallAtK: an image is a hit if any of its captions ranks in its top
 * K; a caption if its image does).
 */
export async function evaluateRetrieval(options: {
  model: CLIPModel;
  dataset: ImageCaptionDataset;
  tokenizer: CaptionTokenizer;
  imageProcessor: ImageProcessor;
  maxLength: number;
  batchSize: number;
  ks: readonly number[];
}): Promise<SplitRetrieval> {
  const { model, dataset, tokenizer } = options;
  const loader = new CaptionLoader(dataset, {
    batchSize: options.batchSize,
    imageProcessor: options.imageProcessor,
    tokenizer,
    maxLength: options.maxLength,
    captionPick: 'first',
  });
  const imageParts: tf.Tensor2D[] = [];
  const textParts: tf.Tensor2D[] = [];
  try {
    for await (const b of loader.batches(0)) {
      imageParts.push(model.encodeImages(b.pixelValues));
      tf.dispose([b.pixelValues, b.inputIds, b.attentionMask]);
    }
    const { texts, imageIndex } = allCaptions(dataset);
    for (let start = 0; start < texts.length; start += options.batchSize) {
      const enc = tokenizer.encode(texts.slice(start, start + options.batchSize), options.maxLength);
      textParts.push(
        tf.tidy(() =>
          model.encodeTexts({
            inputIds: tf.tensor2d(enc.inputIds, [enc.batchSize, enc.seqLength], 'int32'),
            attentionMask: tf.tensor2d(enc.attentionMask, [enc.batchSize, enc.seqLength], 'int32'),
          }),
        ),
      );
    }
    const images = tf.concat(imageParts) as tf.Tensor2D;
    const captions = tf.concat(textParts) as tf.Tensor2D;
    try {
      const recall = await retrievalRecallAtK(images, captions, imageIndex, options.ks);
      return { images: images.shape[0], captions: captions.shape[0], recall };
    } finally {
      tf.dispose([images, captions]);
    }
  } finally {
    tf.dispose([...imageParts, ...textParts]);
  }
}
