import * as tf from '@tensorflow/tfjs-core';
import {
  DEFAULT_TEMPLATES,
  ValueError,
  ZeroShotClassifier,
  type CLIPModel,
  type ZeroShotPrediction,
} from '@clip-ts/core';
import { platform } from '#clip-platform';
import { loadCLIPParts, type CLIPCheckpointKind, type CLIPLoadOptions } from './clip-checkpoint.js';
import type { CLIPTokenizer } from './clip-tokenizer.js';
import { batchSize, eachPixelBatch, imageRows, type BatchOptions, type CLIPImage } from './clip-images.js';
import { Embeddings, topKByDot, type SearchHit } from './embeddings.js';
import type { ImageProcessorOptions } from './image-processor.js';
import type { CLIPImageProcessor } from './platform/types.js';
import type { HFTokenizer } from './tokenizer.js';
import { toTensors } from './tokenizer.js';

/**
 * One object for running CLIP: the model, its tokenizer (with the checkpoint's caption length) and its
 * image processor. docs/pretrained.md is the user's guide; its code runs in a test.
 */

export interface ClassifierOptions {
  /** Prompt templates with `{}` for the label; several are ensembled. Default ['a photo of a {}.']. */
  templates?: readonly string[];
}

export interface CLIPZeroShotOptions extends BatchOptions, ClassifierOptions {
  /** Labels returned per image, best first. Default: all. */
  topK?: number;
}

export interface CLIPParts {
  /** Owned by the CLIP object from then on (its dispose() frees it). */
  model: CLIPModel;
  tokenizer: CLIPTokenizer;
  imageProcessor?: ImageProcessorOptions;
  kind?: CLIPCheckpointKind;
  source?: string;
}

export class CLIP {
  /** The model; owned by this object. */
  readonly model: CLIPModel;
  readonly tokenizer: HFTokenizer;
  /** Captions are truncated / padded to this many tokens (from the checkpoint). */
  readonly maxLength: number;
  readonly imageProcessor: CLIPImageProcessor;
  readonly kind: CLIPCheckpointKind;
  /** Where it was loaded from (directory, Hub snapshot or URL), for messages. */
  readonly source: string;
  private disposed = false;
  /** Classifiers made by this object: zeroShot refuses others (their class embeddings are another model's). */
  private readonly classifiers = new WeakSet<ZeroShotClassifier>();

  private constructor(parts: CLIPParts) {
    this.model = parts.model;
    this.tokenizer = parts.tokenizer.tokenizer;
    this.maxLength = parts.tokenizer.maxLength;
    this.imageProcessor = platform.imageProcessor(parts.imageProcessor ?? {});
    this.kind = parts.kind ?? 'clip-ts';
    this.source = parts.source ?? 'memory';
  }

  /**
   * Load a CLIP checkpoint: an HF CLIPModel repo (model_type clip) or a clip-ts checkpoint (model_type
   * clip-ts, e.g. a run's best/). Node: a directory, a Hub id (Hub client: cache, resume, offline) or an
   * http(s) URL base; browser: a URL base or a Hub id. The returned object owns the model.
   */
  static async fromPretrained(source: string, options: CLIPLoadOptions = {}): Promise<CLIP> {
    // Without initBackend, tfjs picks its best registered backend; wasm needs this await before first use.
    await tf.ready();
    const files = await platform.open(source, options);
    const parts = await loadCLIPParts(files, options.seed === undefined ? {} : { seed: options.seed });
    try {
      const imageProcessor = options.imageProcessor ? { ...parts.imageProcessor, ...options.imageProcessor } : parts.imageProcessor;
      return new CLIP({ ...parts, ...(imageProcessor ? { imageProcessor } : {}), source: files.name });
    } catch (err) {
      parts.model.dispose();
      throw err;
    }
  }

  /** Wrap parts already in memory (e.g. a freshly trained model). The CLIP object takes over the model. */
  static fromParts(parts: CLIPParts): CLIP {
    return new CLIP(parts);
  }

  /** exp(logit_scale): multiplies cosines into CLIP's logits (100 for OpenAI's models). */
  get logitScale(): number {
    this.live();
    return Math.exp(this.model.logitScale.dataSync()[0] as number);
  }

  /** L2-normalised image embeddings [images, dim]; holds no tensor. */
  async embedImages(images: readonly CLIPImage[], options: BatchOptions = {}): Promise<Embeddings> {
    this.live();
    const dim = this.model.projectionDim;
    const rows = imageRows(images, this.imageProcessor);
    const data = new Float32Array(rows.length * dim);
    await eachPixelBatch(rows, this.imageProcessor, options, async (pixels, start) => {
      if (options.encoder) {
        data.set(await options.encoder.embedImages(pixels), start * dim);
        return;
      }
      const emb = this.model.encodeImages(pixels);
      try {
        data.set(await emb.data(), start * dim);
      } finally {
        emb.dispose();
      }
    });
    return new Embeddings(data, rows.length, dim);
  }

  /** As embedImages, as a tf.Tensor2D [images, dim] that the caller owns and disposes. */
  async embedImagesTensor(images: readonly CLIPImage[], options: BatchOptions = {}): Promise<tf.Tensor2D> {
    this.live();
    const parts: tf.Tensor2D[] = [];
    try {
      await eachPixelBatch(imageRows(images, this.imageProcessor), this.imageProcessor, options, (pixels) => {
        parts.push(this.model.encodeImages(pixels));
        return Promise.resolve();
      });
      return parts.length === 1 ? (parts.pop() as tf.Tensor2D) : tf.concat(parts, 0);
    } finally {
      tf.dispose(parts);
    }
  }

  /** L2-normalised text embeddings [texts, dim], tokenised to the checkpoint's maxLength; holds no tensor. */
  async embedTexts(texts: readonly string[], options: BatchOptions = {}): Promise<Embeddings> {
    this.live();
    const dim = this.model.projectionDim;
    const data = new Float32Array(texts.length * dim);
    if (options.encoder) {
      const { encoder } = options;
      await this.eachTextInput(texts, options, async (input, start) => data.set(await encoder.embedTexts(input), start * dim));
      return new Embeddings(data, texts.length, dim);
    }
    await this.eachTextBatch(texts, options, async (emb, start) => {
      data.set(await emb.data(), start * dim);
    });
    return new Embeddings(data, texts.length, dim);
  }

  /** As embedTexts, as a tf.Tensor2D [texts, dim] that the caller owns and disposes. */
  async embedTextsTensor(texts: readonly string[], options: BatchOptions = {}): Promise<tf.Tensor2D> {
    this.live();
    const parts: tf.Tensor2D[] = [];
    try {
      await this.eachTextBatch(texts, options, (emb) => {
        parts.push(tf.clone(emb));
        return Promise.resolve();
      });
      return parts.length === 1 ? (parts.pop() as tf.Tensor2D) : tf.concat(parts, 0);
    } finally {
      tf.dispose(parts);
    }
  }

  /**
   * Class text embeddings for zeroShot, computed once: each label under each template, per class the
   * normalised prompt embeddings averaged and renormalised. The caller owns the classifier (dispose()); it
   * borrows this object's model, so it is unusable after clip.dispose(). ValueError for an empty label
   * list or a template without `{}`.
   */
  classifier(labels: readonly string[], options: ClassifierOptions = {}): ZeroShotClassifier {
    this.live();
    const clf = ZeroShotClassifier.create(
      this.model,
      (texts) => toTensors(this.tokenizer.encode(texts, this.maxLength)),
      labels,
      options.templates ?? DEFAULT_TEMPLATES,
    );
    this.classifiers.add(clf);
    return clf;
  }

  /**
   * Per image, the labels sorted by probability: softmax over the classes of exp(logit_scale) · cosine (a
   * SigLIP model: a sigmoid per class of that plus logit_bias; ZeroShotClassifier.probabilities).
   * `labels` may be a classifier from `classifier()` (its templates then apply; passing `templates` too is
   * a ValueError).
   */
  async zeroShot(images: readonly CLIPImage[], labels: readonly string[] | ZeroShotClassifier, options: CLIPZeroShotOptions = {}): Promise<ZeroShotPrediction[]> {
    this.live();
    const rows = imageRows(images, this.imageProcessor);
    let owned: ZeroShotClassifier | undefined;
    let clf: ZeroShotClassifier;
    if (labels instanceof ZeroShotClassifier) {
      if (!this.classifiers.has(labels)) throw new ValueError('zeroShot: the classifier was not made by this CLIP object (clip.classifier(labels))');
      if (options.templates) throw new ValueError('zeroShot: a classifier carries its own templates; pass labels to use other templates');
      clf = labels;
    } else {
      clf = owned = this.classifier(labels, options);
    }
    try {
      const k = options.topK ?? clf.classNames.length;
      const out: ZeroShotPrediction[] = [];
      await eachPixelBatch(rows, this.imageProcessor, options, async (pixels) => {
        out.push(...(await clf.classify(pixels, k)));
      });
      return out;
    } finally {
      owned?.dispose();
    }
  }

  /** Cosine similarities [images × texts] (multiply by logitScale for CLIP's logits_per_image). */
  async similarity(images: readonly CLIPImage[], texts: readonly string[], options: BatchOptions = {}): Promise<number[][]> {
    this.live();
    const img = await this.embedImagesTensor(images, options);
    let txt: tf.Tensor2D | undefined;
    let sims: tf.Tensor2D | undefined;
    try {
      txt = await this.embedTextsTensor(texts, options);
      const t = txt;
      const m = tf.tidy(() => tf.matMul(img, t, false, true) as tf.Tensor2D);
      sims = m;
      return await m.array();
    } finally {
      tf.dispose([img, ...(txt ? [txt] : []), ...(sims ? [sims] : [])]);
    }
  }

  /** The `k` rows of `imageEmbeddings` (from embedImages) most similar to `queryText`, best first. */
  async search(queryText: string, imageEmbeddings: Embeddings, k = 10): Promise<SearchHit[]> {
    this.live();
    const query = await this.embedTexts([queryText]);
    return topKByDot(query.data, imageEmbeddings, k);
  }

  /** Free the model's tensors. Idempotent; any later call is a ValueError. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }

  private live(): void {
    if (this.disposed) throw new ValueError(`CLIP (${this.source}): used after dispose()`);
  }

  /** Normalised text embeddings of consecutive texts; each is disposed after `fn`. */
  private async eachTextBatch(texts: readonly string[], options: BatchOptions, fn: (emb: tf.Tensor2D, start: number) => Promise<void>): Promise<void> {
    await this.eachTextInput(texts, options, async (input, start) => {
      const emb = this.model.encodeTexts(input);
      try {
        await fn(emb, start);
      } finally {
        emb.dispose();
      }
    });
  }

  /** Each batch of `texts` tokenised to tensors (borrowed by `fn`, disposed here). */
  private async eachTextInput(
    texts: readonly string[],
    options: BatchOptions,
    fn: (input: { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D }, start: number) => Promise<void>,
  ): Promise<void> {
    if (!Array.isArray(texts)) throw new ValueError('CLIP: texts must be an array of strings');
    if (texts.length === 0) throw new ValueError('CLIP: no texts');
    const bad = texts.findIndex((t) => typeof t !== 'string');
    if (bad >= 0) throw new ValueError(`CLIP: text ${bad} is not a string`);
    const size = batchSize(options);
    for (let start = 0; start < texts.length; start += size) {
      const chunk = texts.slice(start, start + size);
      const input = toTensors(this.tokenizer.encode(chunk, this.maxLength));
      try {
        await fn(input, start);
      } finally {
        tf.dispose([input.inputIds, input.attentionMask]);
      }
      options.onProgress?.(start + chunk.length, texts.length);
    }
  }
}

