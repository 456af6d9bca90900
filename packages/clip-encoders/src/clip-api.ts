import * as tf from '@tensorflow/tfjs-core';
import {
  DataError,
  DEFAULT_TEMPLATES,
  ShapeError,
  ValueError,
  ZeroShotClassifier,
  type CLIPModel,
  type ZeroShotPrediction,
} from '@clip-ts/core';
import { platform } from '#clip-platform';
import { loadCLIPParts, type CLIPCheckpointKind, type CLIPLoadOptions } from './clip-checkpoint.js';
import type { CLIPTokenizer } from './clip-tokenizer.js';
import { Embeddings, topKByDot, type SearchHit } from './embeddings.js';
import type { ImageProcessorOptions } from './image-processor.js';
import type { CLIPImageProcessor } from './platform/types.js';
import type { HFTokenizer } from './tokenizer.js';
import { toTensors } from './tokenizer.js';

/**
 * One object for running CLIP: the model, its tokenizer (with the checkpoint's caption length) and its
 * image processor. docs/pretrained.md is the user's guide; its code runs in a test.
 */

/** Decoded pixels: interleaved uint8 RGB, RGBA or gray, row-major (a browser ImageData fits). */
export interface RgbPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** Default: data.length / (width · height). */
  channels?: 1 | 3 | 4;
}

/**
 * An image for CLIP: a file path or encoded bytes (decoded by the platform: sharp in Node), decoded
 * pixels, or a float32 tensor of processed pixel values [3, H, W] / [N, 3, H, W] at the processor's size
 * (borrowed, not disposed).
 */
export type CLIPImage = string | Uint8Array | ArrayBuffer | RgbPixels | tf.Tensor3D | tf.Tensor4D;

export interface BatchOptions {
  /** Inputs per forward pass. Default 32. */
  batchSize?: number;
  /** Called after each batch with the inputs done so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface ClassifierOptions {
  /** Prompt templates with `{}` for the label; several are ensembled. Default ['a photo of a {}.']. */
  templates?: readonly string[];
}

export interface ZeroShotOptions extends BatchOptions, ClassifierOptions {
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

/** One image row to process: an input that needs processing, or row `index` of a tensor the caller passed. */
type Row = { input: Exclude<CLIPImage, tf.Tensor>; label: string } | { tensor: tf.Tensor3D | tf.Tensor4D; index: number };

const DEFAULT_BATCH = 32;

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
      return new CLIP({ ...parts, source: files.name });
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
    const rows = this.rows(images);
    const data = new Float32Array(rows.length * dim);
    await this.eachPixelBatch(rows, options, async (pixels, start) => {
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
      await this.eachPixelBatch(this.rows(images), options, (pixels) => {
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
   * Per image, the labels sorted by probability: softmax over the classes of exp(logit_scale) · cosine.
   * `labels` may be a classifier from `classifier()` (its templates then apply; passing `templates` too is
   * a ValueError).
   */
  async zeroShot(images: readonly CLIPImage[], labels: readonly string[] | ZeroShotClassifier, options: ZeroShotOptions = {}): Promise<ZeroShotPrediction[]> {
    this.live();
    const rows = this.rows(images);
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
      await this.eachPixelBatch(rows, options, async (pixels) => {
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

  /** Validate every input before any work, expanding batched tensors into rows. */
  private rows(images: readonly CLIPImage[]): Row[] {
    if (!Array.isArray(images)) throw new ValueError('CLIP: images must be an array');
    if (images.length === 0) throw new ValueError('CLIP: no images');
    const { height: H, width: W } = this.imageProcessor;
    const rows: Row[] = [];
    images.forEach((input, i) => {
      if (input instanceof tf.Tensor) {
        const [c, h, w] = input.rank === 4 ? input.shape.slice(1) : input.shape;
        if ((input.rank !== 3 && input.rank !== 4) || c !== 3 || h !== H || w !== W || input.dtype !== 'float32') {
          throw new ShapeError(`image ${i}: a tensor must be float32 [3, ${H}, ${W}] or [N, 3, ${H}, ${W}] processed pixel values, got ${input.dtype} [${input.shape.join(', ')}]`);
        }
        const n = input.rank === 4 ? (input.shape[0] as number) : 1;
        for (let j = 0; j < n; j++) rows.push({ tensor: input, index: j });
      } else if (typeof input === 'string') {
        rows.push({ input, label: input });
      } else if (input instanceof Uint8Array || input instanceof ArrayBuffer || isPixels(input)) {
        rows.push({ input, label: `image ${i}` });
      } else {
        throw new ValueError(`image ${i}: expected a path, encoded bytes, decoded pixels { data, width, height } or a tensor`);
      }
    });
    return rows;
  }

  private async process(row: Exclude<Row, { tensor: unknown }>): Promise<Float32Array> {
    const { input, label } = row;
    if (typeof input === 'string') return this.imageProcessor.processFile(input);
    if (input instanceof Uint8Array) return this.imageProcessor.processBuffer(input, label);
    if (input instanceof ArrayBuffer) return this.imageProcessor.processBuffer(new Uint8Array(input), label);
    const { data, width, height } = input;
    const channels = input.channels ?? data.length / (width * height);
    if (channels !== 1 && channels !== 3 && channels !== 4) {
      throw new DataError(`${label}: ${data.length} bytes for ${width}×${height} is not 1, 3 or 4 channels`);
    }
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.length);
    return this.imageProcessor.processRawSync(bytes, width, height, channels, label);
  }

  /** Pixel tensors [≤ batchSize, 3, H, W] of consecutive rows; each is disposed after `fn`. */
  private async eachPixelBatch(rows: readonly Row[], options: BatchOptions, fn: (pixels: tf.Tensor4D, start: number) => Promise<void>): Promise<void> {
    const size = batchSize(options);
    const { height: H, width: W } = this.imageProcessor;
    for (let start = 0; start < rows.length; start += size) {
      const chunk = rows.slice(start, start + size);
      const processed = await Promise.all(chunk.map((r) => ('tensor' in r ? undefined : this.process(r))));
      const pixels = tf.tidy(() =>
        tf.stack(
          chunk.map((r, i) => {
            if (!('tensor' in r)) return tf.tensor3d(processed[i] as Float32Array, [3, H, W]);
            return r.tensor.rank === 3 ? r.tensor : tf.reshape(tf.slice(r.tensor, [r.index, 0, 0, 0], [1, 3, H, W]), [3, H, W]);
          }),
        ),
      ) as tf.Tensor4D;
      try {
        await fn(pixels, start);
      } finally {
        pixels.dispose();
      }
      options.onProgress?.(start + chunk.length, rows.length);
    }
  }

  /** Normalised text embeddings of consecutive texts; each is disposed after `fn`. */
  private async eachTextBatch(texts: readonly string[], options: BatchOptions, fn: (emb: tf.Tensor2D, start: number) => Promise<void>): Promise<void> {
    if (!Array.isArray(texts)) throw new ValueError('CLIP: texts must be an array of strings');
    if (texts.length === 0) throw new ValueError('CLIP: no texts');
    const bad = texts.findIndex((t) => typeof t !== 'string');
    if (bad >= 0) throw new ValueError(`CLIP: text ${bad} is not a string`);
    const size = batchSize(options);
    for (let start = 0; start < texts.length; start += size) {
      const chunk = texts.slice(start, start + size);
      const input = toTensors(this.tokenizer.encode(chunk, this.maxLength));
      let emb: tf.Tensor2D | undefined;
      try {
        emb = this.model.encodeTexts(input);
        await fn(emb, start);
      } finally {
        tf.dispose([input.inputIds, input.attentionMask]);
        emb?.dispose();
      }
      options.onProgress?.(start + chunk.length, texts.length);
    }
  }
}

function isPixels(x: unknown): x is RgbPixels {
  if (typeof x !== 'object' || x === null) return false;
  const p = x as Partial<RgbPixels>;
  return (p.data instanceof Uint8Array || p.data instanceof Uint8ClampedArray) && Number.isInteger(p.width) && Number.isInteger(p.height);
}

function batchSize(options: BatchOptions): number {
  const size = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(size) || size < 1) throw new ValueError(`CLIP: batchSize must be a positive integer, got ${size}`);
  return size;
}
