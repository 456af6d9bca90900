import * as tf from '@tensorflow/tfjs-core';
import { ValueError } from '@clip-ts/core';
import { toPixelTensor, toTensors } from '@clip-ts/encoders';
import type { LoadedCheckpoint } from '@clip-ts/train';

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
export async function embedTexts(ckpt: LoadedCheckpoint, texts: readonly string[], batchSize = 64): Promise<EmbeddingMatrix> {
  if (texts.length === 0) throw new ValueError('embedTexts: no texts');
  const dim = ckpt.model.projectionDim;
  const data = new Float32Array(texts.length * dim);
  for (let start = 0; start < texts.length; start += batchSize) {
    const chunk = texts.slice(start, start + batchSize);
    const input = toTensors(ckpt.tokenizer.encode(chunk, ckpt.maxLength));
    try {
      const emb = ckpt.model.encodeTexts(input);
      data.set(await emb.data(), start * dim);
      emb.dispose();
    } finally {
      tf.dispose([input.inputIds, input.attentionMask]);
    }
  }
  return { data, count: texts.length, dim };
}

/** L2-normalised image embeddings from already preprocessed CHW images. Leaves no tensor behind. */
export async function embedPixels(ckpt: LoadedCheckpoint, images: readonly Float32Array[], batchSize = 32): Promise<EmbeddingMatrix> {
  if (images.length === 0) throw new ValueError('embedPixels: no images');
  const dim = ckpt.model.projectionDim;
  const { height, width } = ckpt.imageProcessor;
  const data = new Float32Array(images.length * dim);
  for (let start = 0; start < images.length; start += batchSize) {
    const pixels = toPixelTensor(images.slice(start, start + batchSize), height, width);
    try {
      const emb = ckpt.model.encodeImages(pixels);
      data.set(await emb.data(), start * dim);
      emb.dispose();
    } finally {
      pixels.dispose();
    }
  }
  return { data, count: images.length, dim };
}

/** Image files → embeddings; files are decoded with the checkpoint's image processor (errors name the file). */
export async function embedImageFiles(ckpt: LoadedCheckpoint, files: readonly string[], batchSize = 32): Promise<EmbeddingMatrix> {
  if (files.length === 0) throw new ValueError('embedImageFiles: no images');
  const dim = ckpt.model.projectionDim;
  const data = new Float32Array(files.length * dim);
  for (let start = 0; start < files.length; start += batchSize) {
    const chunk = files.slice(start, start + batchSize);
    const images = await Promise.all(chunk.map((f) => ckpt.imageProcessor.processFile(f)));
    const emb = await embedPixels(ckpt, images, batchSize);
    data.set(emb.data, start * dim);
  }
  return { data, count: files.length, dim };
}
