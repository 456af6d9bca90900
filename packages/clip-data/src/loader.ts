import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, ShapeError, ValueError, hash32 } from '@clip-ts/core';
import type { CaptionTokenizer, ImageProcessor } from '@clip-ts/core';
import { Augmenter } from './augment/augmenter.js';
import type { ResolvedAugmentOptions } from './augment/options.js';
import { AugmentingProcessor } from './augment/processor.js';
import { BadImageError } from './errors.js';
import { CaptionLoaderOptionsSchema, ClassificationLoaderOptionsSchema } from './schemas.js';
import type { CaptionLoaderOptions, ClassificationLoaderOptions } from './schemas.js';
import type { ClassificationDataset, ImageCaptionDataset, ImageDataset, OnBadImage, WarningSink } from './types.js';
import { parseOptions } from './options.js';
import { defaultWarn } from './warnings.js';

/**
 * One batch of image–caption pairs, ready for the model. The CONSUMER OWNS the tensors and must
 * dispose them (`disposeBatch(b)`), also when it stops iterating early.
 */
export interface CaptionBatch {
  /** float32 [B, 3, H, W], normalised by the image processor. */
  pixelValues: tf.Tensor4D;
  /** int32 [B, maxLength]. */
  inputIds: tf.Tensor2D;
  /** int32 [B, maxLength], 1 for real tokens, 0 for padding. */
  attentionMask: tf.Tensor2D;
  /** Dataset index of each row. */
  indices: number[];
  /** Which of the image's captions each row uses. */
  captionIndices: number[];
  /** The caption text of each row (what was tokenised): multi-positive targets compare them. */
  captions: string[];
}

/** One batch of labelled images. The consumer owns `pixelValues` and disposes it (`disposeBatch(b)`). */
export interface LabelBatch {
  pixelValues: tf.Tensor4D;
  labels: number[];
  indices: number[];
}

/** Dispose every tensor of a batch. */
export function disposeBatch(batch: CaptionBatch | LabelBatch): void {
  batch.pixelValues.dispose();
  if ('inputIds' in batch) {
    batch.inputIds.dispose();
    batch.attentionMask.dispose();
  }
}

const SHUFFLE_SALT = 0x5348_5546;
const PICK_SALT = 0x5049_434b;

/** FIFO counting semaphore: the images of earlier batches get decoder slots first. */
class Semaphore {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

interface Decoded {
  /** Dataset indices whose images decoded (bad ones skipped). */
  indices: number[];
  /** Their images, concatenated: indices.length * 3 * H * W. */
  pixels: Float32Array;
  /** A processFiles batch buffer the loader may reuse once the tensor holds a copy. */
  reusable?: boolean;
}

/**
 * Backends whose tensor4d copies the values into their own memory (the cpu backend keeps the array, webgl
 * uploads it later), so the batch buffer can be refilled as soon as the tensor exists.
 */
const COPYING_BACKENDS = new Set(['wasm', 'tensorflow']);
/** Spare batch buffers kept: prefetched batches each hold one until their tensor is made. */
const MAX_SPARE = 4;

interface CommonOptions {
  batchSize: number;
  imageProcessor: ImageProcessor;
  shuffle: boolean;
  seed: number;
  dropLast: boolean;
  prefetch: number;
  concurrency: number;
  onBadImage?: OnBadImage | undefined;
  cache: boolean;
  onWarning?: WarningSink | undefined;
  augment?: ResolvedAugmentOptions | undefined;
}

/**
 * Shared pipeline: seeded order per epoch, batches of indices, images decoded `concurrency` at a time,
 * up to `prefetch` batches decoded ahead of the one the consumer holds (no more: backpressure), tensors
 * built once per batch when it is handed out.
 */
abstract class BaseLoader<D extends ImageDataset, B> {
  readonly numBatches: number;
  protected readonly opts: CommonOptions;
  private readonly onBad: OnBadImage;
  private readonly warn: WarningSink;
  private readonly bad = new Set<number>();
  private readonly cache: Map<number, Float32Array> | undefined;
  private readonly augmenter: Augmenter | undefined;
  /** Batch buffers to refill: a fresh 19 MB buffer per batch costs ~2 ms/image in page faults. */
  private readonly spare: Float32Array[] = [];

  constructor(
    readonly dataset: D,
    opts: CommonOptions,
  ) {
    this.opts = opts;
    this.onBad = opts.onBadImage ?? dataset.onBadImage ?? 'error';
    this.warn = opts.onWarning ?? defaultWarn;
    this.cache = opts.cache ? new Map() : undefined;
    const augmenter = opts.augment ? new Augmenter(opts.augment, opts.seed) : undefined;
    this.augmenter = augmenter?.active ? augmenter : undefined;
    if (this.augmenter && opts.cache) {
      throw new ConfigError(`${dataset.name}/${dataset.split}: augment and cache cannot be combined (augmented pixels differ every epoch)`);
    }
    const n = dataset.length;
    this.numBatches = opts.dropLast ? Math.floor(n / opts.batchSize) : Math.ceil(n / opts.batchSize);
    if (this.numBatches === 0) {
      throw new ValueError(`${dataset.name}/${dataset.split}: ${n} images give no batch of ${opts.batchSize} with dropLast`);
    }
  }

  /** True when the loader augments its images (an `augment` option with some part on). */
  get augmented(): boolean {
    return this.augmenter !== undefined;
  }

  /** Dataset indices in the order of `epoch` (a permutation derived from (seed, epoch) when shuffling). */
  order(epoch: number): number[] {
    const idx = Array.from({ length: this.dataset.length }, (_, i) => i);
    return this.opts.shuffle ? new Rng(hash32(hash32(this.opts.seed, SHUFFLE_SALT), epoch)).shuffle(idx) : idx;
  }

  /** The index lists of every batch of `epoch`. */
  plan(epoch: number): number[][] {
    const order = this.order(epoch);
    const B = this.opts.batchSize;
    return Array.from({ length: this.numBatches }, (_, b) => order.slice(b * B, (b + 1) * B));
  }

  /** Dataset indices skipped so far because their image could not be decoded (onBadImage 'skip'). */
  get skippedImages(): readonly number[] {
    return [...this.bad].sort((a, b) => a - b);
  }

  /**
   * The batches of `epoch`, in order; deterministic in (seed, epoch), so a run resumed at
   * `startBatch` sees exactly the batches an uninterrupted one would. The consumer disposes each batch.
   * With onBadImage 'skip', a batch holding an undecodable image has fewer rows.
   */
  async *batches(epoch = 0, options: { startBatch?: number } = {}): AsyncGenerator<B> {
    if (!Number.isInteger(epoch) || epoch < 0) throw new ValueError(`batches: epoch must be a non-negative integer, got ${epoch}`);
    const startBatch = options.startBatch ?? 0;
    if (!Number.isInteger(startBatch) || startBatch < 0 || startBatch > this.numBatches) {
      throw new ValueError(`batches: startBatch must be an integer in [0, ${this.numBatches}], got ${startBatch}`);
    }
    const plan = this.plan(epoch).slice(startBatch);
    const sem = new Semaphore(this.opts.concurrency);
    const pending: Array<Promise<Decoded>> = [];
    let next = 0;
    const start = () => {
      const p = this.decode(plan[next++] as number[], sem, epoch);
      // Mark as handled now: a prefetched batch may fail while the consumer holds another one (or
      // after it stopped early); the error surfaces when (if) that batch is awaited below.
      p.catch(() => undefined);
      pending.push(p);
    };
    while (true) {
      if (pending.length === 0) {
        if (next >= plan.length) break;
        start();
      }
      const decoded = await (pending.shift() as Promise<Decoded>);
      // Start the following batches before handing this one out, so decoding overlaps the model's work.
      while (pending.length < this.opts.prefetch && next < plan.length) start();
      if (decoded.indices.length === 0) continue;
      yield this.assemble(decoded, epoch);
    }
  }

  protected pixelTensor(d: Decoded): tf.Tensor4D {
    const { height, width } = this.opts.imageProcessor;
    const t = tf.tensor4d(d.pixels, [d.indices.length, 3, height, width], 'float32');
    if (d.reusable && COPYING_BACKENDS.has(tf.getBackend()) && this.spare.length < MAX_SPARE) this.spare.push(d.pixels);
    return t;
  }

  protected abstract assemble(decoded: Decoded, epoch: number): B;

  /**
   * The processor of image `index` in `epoch`: the loader's own, or one that augments it with draws from
   * (seed, epoch, index) alone — so decode concurrency, prefetch and resuming mid-epoch change nothing.
   */
  private processorFor(index: number, epoch: number): ImageProcessor {
    const base = this.opts.imageProcessor;
    return this.augmenter ? new AugmentingProcessor(base, this.augmenter.forSample(epoch, index)) : base;
  }

  private async image(index: number, sem: Semaphore, epoch: number): Promise<Float32Array | null> {
    if (this.bad.has(index)) return null;
    const hit = this.cache?.get(index);
    if (hit) return hit;
    await sem.acquire();
    try {
      const img = await this.dataset.loadImage(index, this.processorFor(index, epoch));
      this.cache?.set(index, img);
      return img;
    } catch (err) {
      if (!(err instanceof BadImageError) || this.onBad !== 'skip') throw err;
      this.bad.add(index);
      this.warn(`${this.dataset.name}/${this.dataset.split}: skipped an undecodable image (${this.bad.size} so far): ${err.message}`);
      return null;
    } finally {
      sem.release();
    }
  }

  /**
   * The whole batch through processor.processFiles (worker threads, one buffer) when nothing per image is
   * needed: no augmentation, no cache, every image a plain file not known to be bad. Null otherwise, or
   * when a file fails: then the per-image path below decodes the batch and applies onBadImage.
   */
  private async decodeFiles(indices: number[]): Promise<Decoded | null> {
    const processor = this.opts.imageProcessor;
    const imageFile = this.dataset.imageFile?.bind(this.dataset);
    if (!processor.processFiles || !imageFile || this.augmenter || this.cache || indices.some((i) => this.bad.has(i))) return null;
    const chw = 3 * processor.height * processor.width;
    const k = this.spare.findIndex((b) => b.length === indices.length * chw);
    const out = k >= 0 ? this.spare.splice(k, 1)[0] : undefined;
    try {
      const pixels = await processor.processFiles(indices.map(imageFile), out ? { out } : {});
      if (pixels.length !== indices.length * chw) {
        throw new ShapeError(`image processor returned ${pixels.length} values for ${indices.length} images; expected ${indices.length}*3*${processor.height}*${processor.width}`);
      }
      return { indices, pixels, reusable: true };
    } catch (err) {
      if (err instanceof ShapeError) throw err;
      return null;
    }
  }

  private async decode(indices: number[], sem: Semaphore, epoch: number): Promise<Decoded> {
    const batch = await this.decodeFiles(indices);
    if (batch) return batch;
    const { height, width } = this.opts.imageProcessor;
    const chw = 3 * height * width;
    const images = await Promise.all(indices.map((i) => this.image(i, sem, epoch)));
    const kept = indices.filter((_, k) => images[k] !== null);
    const pixels = new Float32Array(kept.length * chw);
    let row = 0;
    for (const img of images) if (img !== null) pixels.set(img, chw * row++);
    return { indices: kept, pixels };
  }
}

/**
 * A mirrored image no longer fits a caption that says "on the left": flipping such data teaches the model
 * to ignore sides (or to contradict its captions). Warn once, with a count and an example.
 */
function warnSidedCaptions(dataset: ImageCaptionDataset, warn: WarningSink): void {
  let count = 0;
  let example = '';
  for (let i = 0; i < dataset.length; i++) {
    const sided = dataset.captions(i).find((c) => /\b(left|right)\b/i.test(c));
    if (sided !== undefined) {
      count++;
      example ||= sided;
    }
  }
  if (count > 0) {
    warn(`${dataset.name}/${dataset.split}: augment.hflip mirrors images, but ${count} of ${dataset.length} images have captions naming a side (e.g. "${example}"); consider hflip off for this data`);
  }
}

/** Batches of (image, one caption) for contrastive training and evaluation. */
export class CaptionLoader extends BaseLoader<ImageCaptionDataset, CaptionBatch> {
  private readonly tokenizer: CaptionTokenizer;
  readonly maxLength: number;
  private readonly captionPick: 'random' | 'first';

  constructor(dataset: ImageCaptionDataset, options: CaptionLoaderOptions) {
    const o = parseOptions(CaptionLoaderOptionsSchema, options, 'CaptionLoader');
    super(dataset, o);
    this.tokenizer = o.tokenizer;
    this.maxLength = o.maxLength;
    this.captionPick = o.captionPick;
    if ((o.augment?.hflip ?? 0) > 0) warnSidedCaptions(dataset, o.onWarning ?? defaultWarn);
  }

  /** Which caption of image `index` epoch `epoch` uses: derived from (seed, epoch, index) only. */
  captionIndex(index: number, epoch: number): number {
    const n = this.dataset.captions(index).length;
    if (this.captionPick === 'first' || n === 1) return 0;
    return new Rng(hash32(hash32(hash32(this.opts.seed, PICK_SALT), epoch), index)).int(n);
  }

  protected assemble(d: Decoded, epoch: number): CaptionBatch {
    const captionIndices = d.indices.map((i) => this.captionIndex(i, epoch));
    const texts = d.indices.map((i, k) => this.dataset.captions(i)[captionIndices[k] as number] as string);
    const enc = this.tokenizer.encode(texts, this.maxLength);
    const n = d.indices.length;
    const L = this.maxLength;
    if (enc.batchSize !== n || enc.seqLength !== L || enc.inputIds.length !== n * L || enc.attentionMask.length !== n * L) {
      throw new ShapeError(
        `tokenizer returned [${enc.batchSize}, ${enc.seqLength}] (${enc.inputIds.length} ids) for ${n} captions; expected [${n}, ${L}]`,
      );
    }
    return {
      pixelValues: this.pixelTensor(d),
      inputIds: tf.tensor2d(enc.inputIds, [n, L], 'int32'),
      attentionMask: tf.tensor2d(enc.attentionMask, [n, L], 'int32'),
      indices: d.indices,
      captionIndices,
      captions: texts,
    };
  }
}

/** Batches of labelled images (zero-shot and linear-probe evaluation). */
export class ClassificationLoader extends BaseLoader<ClassificationDataset, LabelBatch> {
  constructor(dataset: ClassificationDataset, options: ClassificationLoaderOptions) {
    super(dataset, parseOptions(ClassificationLoaderOptionsSchema, options, 'ClassificationLoader'));
  }

  protected assemble(d: Decoded): LabelBatch {
    return { pixelValues: this.pixelTensor(d), labels: d.indices.map((i) => this.dataset.label(i)), indices: d.indices };
  }
}
