import { ValueError } from '@clip-ts/core';
import { toPixelTensor, type CLIP } from '@clip-ts/encoders';

/** Row-major [count, dim] embeddings held on the CPU (no tensors: nothing for the caller to dispose). */
export interface EmbeddingMatrix {
  data: Float32Array;
  count: number;
  dim: number;
}

/**
 * L2-normalised text embeddings of `texts`, tokenised with the checkpoint's tokenizer and caption length,
 * computed `batchSize` at a time so memory stays bounded. Leaves no tensor behind.
 */
export async function embedTexts(clip: CLIP, texts: readonly string[], batchSize = 64): Promise<EmbeddingMatrix> {
  if (texts.length === 0) throw new ValueError('embedTexts: no texts');
  const emb = await clip.embedTexts(texts, { batchSize });
  return { data: emb.data, count: emb.rows, dim: emb.dim };
}

/** L2-normalised image embeddings from already preprocessed CHW images. Leaves no tensor behind. */
export async function embedPixels(clip: CLIP, images: readonly Float32Array[], batchSize = 32): Promise<EmbeddingMatrix> {
  if (images.length === 0) throw new ValueError('embedPixels: no images');
  const dim = clip.model.projectionDim;
  const { height, width } = clip.imageProcessor;
  const data = new Float32Array(images.length * dim);
  for (let start = 0; start < images.length; start += batchSize) {
    const pixels = toPixelTensor(images.slice(start, start + batchSize), height, width);
    try {
      const emb = clip.model.encodeImages(pixels);
      data.set(await emb.data(), start * dim);
      emb.dispose();
    } finally {
      pixels.dispose();
    }
  }
  return { data, count: images.length, dim };
}

/** Image files → embeddings; files are decoded with the checkpoint's image processor (errors name the file). */
export async function embedImageFiles(clip: CLIP, files: readonly string[], batchSize = 32): Promise<EmbeddingMatrix> {
  if (files.length === 0) throw new ValueError('embedImageFiles: no images');
  const emb = await clip.embedImages(files, { batchSize });
  return { data: emb.data, count: emb.rows, dim: emb.dim };
}
