import * as tf from '@tensorflow/tfjs-core';
import { ClipError, ConfigError, type CLIPModel } from '@clip-ts/core';
import type { ImageCaptionDataset } from '@clip-ts/data';
import { loadOrComputeFeatures } from '../cache/feature-cache.js';
import { loadModelDir, pretrainedDir, pretrainedPreprocessing } from '../experiment/pretrained.js';

/**
 * The teacher of `distill`: a CLIP checkpoint whose embeddings of every training image and every caption
 * are computed once (through the frozen-feature cache, so a resumed or repeated run reads them from disk)
 * and then only looked up. Captions are picked per epoch, so the teacher embeds all of them: a batch row
 * (image i, caption k) reads text row captionOffsets[i] + k.
 */

/** Batch rows as the teacher needs them: dataset index and caption index of each pair. */
export interface TeacherRows {
  indices: readonly number[];
  captionIndices: readonly number[];
}

/** The teacher's normalised embeddings and log temperature. Owned by this object: dispose() frees them. */
export class TeacherEmbeddings {
  constructor(
    /** [numImages, teacherDim] */
    readonly images: tf.Tensor2D,
    /** [numCaptions, teacherDim]; image i's captions are rows captionOffsets[i] .. captionOffsets[i+1]-1 */
    readonly texts: tf.Tensor2D,
    readonly captionOffsets: Int32Array,
    /** The teacher's LOG temperature (scalar). */
    readonly logitScale: tf.Scalar,
    /** True when the tower features came from the cache on disk. */
    readonly fromDisk: boolean,
  ) {}

  /** The teacher's embeddings of a batch's pairs; the caller owns both tensors. */
  rows(batch: TeacherRows): { image: tf.Tensor2D; text: tf.Tensor2D } {
    const textRows = batch.indices.map((i, r) => (this.captionOffsets[i] as number) + (batch.captionIndices[r] as number));
    return tf.tidy(() => ({
      image: tf.gather(this.images, tf.tensor1d(batch.indices as number[], 'int32')) as tf.Tensor2D,
      text: tf.gather(this.texts, tf.tensor1d(textRows, 'int32')) as tf.Tensor2D,
    }));
  }

  dispose(): void {
    tf.dispose([this.images, this.texts, this.logitScale]);
  }
}

export interface TeacherOptions {
  /** distill.teacher: a checkpoint directory or Hub id. */
  teacher: string;
  dataset: ImageCaptionDataset;
  /** Captions are tokenised to this many tokens, as the student's. */
  maxLength: number;
  /** Feature cache directory. */
  cacheDir: string;
  batchSize: number;
  seed: number;
}

/**
 * Load the teacher with its own tokenizer and image preprocessing (it was trained with them, not with the
 * student's), embed `dataset` once, and free the teacher. The caller owns the result.
 */
export async function loadTeacherEmbeddings(o: TeacherOptions): Promise<TeacherEmbeddings> {
  let model: CLIPModel;
  let dir: string;
  try {
    dir = await pretrainedDir(o.teacher);
    model = await loadModelDir(dir, { seed: o.seed });
  } catch (err) {
    if (err instanceof ClipError) throw err;
    throw new ConfigError(`distill.teacher: ${o.teacher}: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (model.lossType !== 'clip') {
      throw new ConfigError(`distill.teacher: ${o.teacher} is a '${model.lossType}' model; DistillClipLoss needs a teacher with softmax (CLIP) logits`);
    }
    // No overrides: the teacher's own tokenizer and preprocessor files.
    const { tokenizer, imageProcessor } = await pretrainedPreprocessing({}, dir);
    const features = await loadOrComputeFeatures({ model, dataset: o.dataset, tokenizer, imageProcessor, maxLength: o.maxLength, dir: o.cacheDir, batchSize: o.batchSize });
    try {
      const embeddings = tf.tidy(() => ({
        images: model.projectImageFeatures(features.imageFeatures),
        texts: model.projectTextFeatures(features.textFeatures),
        logitScale: tf.reshape(tf.clone(model.logitScale), []) as tf.Scalar,
      }));
      return new TeacherEmbeddings(embeddings.images, embeddings.texts, features.captionOffsets, embeddings.logitScale, features.fromDisk);
    } finally {
      features.dispose();
    }
  } finally {
    model.dispose();
  }
}
