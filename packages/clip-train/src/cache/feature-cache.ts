import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type CaptionTokenizer, type CLIPModel, type ImageProcessor, type TargetMode } from '@clip-ts/core';
import { readSafetensors, writeSafetensors } from '@clip-ts/core/node';
import { allCaptions, CaptionLoader, type ImageCaptionDataset } from '@clip-ts/data';
import { batchPositives } from '../targets.js';
import { EmbedPool } from '../parallel/embed-pool.js';
import type { BatchSource, EvalOutputs, TrainTask } from '../trainer/types.js';

/**
 * Frozen-tower feature cache. With both towers frozen their outputs never change, so each image and each
 * caption is encoded once and stored on disk (safetensors); training then runs only the heads on the
 * cached features. ALL captions are cached, so per-epoch random caption picks still work.
 */

/** Tower features of one split, on the device. Owned by this object: dispose() frees them. */
export class CachedFeatures {
  constructor(
    /** float32 [numImages, visionHidden] */
    readonly imageFeatures: tf.Tensor2D,
    /** float32 [numCaptions, textHidden]; image i's captions are rows captionOffsets[i] .. captionOffsets[i+1]-1 */
    readonly textFeatures: tf.Tensor2D,
    readonly captionOffsets: Int32Array,
    /** True when read from disk rather than computed now. */
    readonly fromDisk: boolean,
  ) {}

  get numImages(): number {
    return this.imageFeatures.shape[0];
  }

  dispose(): void {
    tf.dispose([this.imageFeatures, this.textFeatures]);
  }
}

export interface FeatureCacheOptions {
  model: CLIPModel;
  dataset: ImageCaptionDataset;
  tokenizer: CaptionTokenizer;
  imageProcessor: ImageProcessor;
  maxLength: number;
  /** Directory of cache files (created if missing). */
  dir: string;
  /** Images / captions encoded per forward pass. */
  batchSize: number;
  /**
   * Replicas that split each forward pass when the features must be computed (an EmbedPool started and
   * closed here; 2 replicas × 1 wasm thread beat 1 × 2 threads, docs/training.md). Default 1.
   */
  replicas?: number | undefined;
}

/** sha256 over both towers' configs and weight bytes: any change of tower weights invalidates the cache. */
export async function towerFingerprint(model: CLIPModel): Promise<string> {
  const h = createHash('sha256');
  h.update(JSON.stringify([model.imageEncoder.getConfig(), model.textEncoder.getConfig()]));
  for (const nv of [...model.imageEncoder.namedVariables(), ...model.textEncoder.namedVariables()]) {
    const data = await nv.variable.data();
    h.update(nv.name);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}

/** The cache key: tower weights + dataset contents + image preprocessing + tokenizer + maxLength. */
export function featureCacheKey(parts: { towers: string; dataset: ImageCaptionDataset; tokenizer: CaptionTokenizer; imageProcessor: ImageProcessor; maxLength: number }): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        v: 1,
        towers: parts.towers,
        dataset: [parts.dataset.name, parts.dataset.split, parts.dataset.fingerprint()],
        image: parts.imageProcessor.fingerprint(),
        tokenizer: parts.tokenizer.fingerprint(),
        maxLength: parts.maxLength,
      }),
    )
    .digest('hex');
}

/**
 * Features of `dataset` from the cache file for its key, or computed now (towers in inference mode) and
 * written there. `towers` (from towerFingerprint) may be passed to avoid hashing the weights per split.
 */
export async function loadOrComputeFeatures(options: FeatureCacheOptions, towers?: string): Promise<CachedFeatures> {
  const { model, dataset, tokenizer, imageProcessor, maxLength } = options;
  const key = featureCacheKey({ towers: towers ?? (await towerFingerprint(model)), dataset, tokenizer, imageProcessor, maxLength });
  const file = path.join(options.dir, `${dataset.split}-${key.slice(0, 24)}.safetensors`);
  if (await stat(file).then(() => true, () => false)) {
    const st = await readSafetensors(file);
    if (st.metadata.key === key) {
      const get = (name: string) => st.tensors.get(name);
      const img = get('image_features');
      const txt = get('text_features');
      const off = get('caption_offsets');
      if (img && txt && off && img.shape[0] === dataset.length) {
        return new CachedFeatures(
          tf.tensor2d(img.data as Float32Array, img.shape as [number, number]),
          tf.tensor2d(txt.data as Float32Array, txt.shape as [number, number]),
          Int32Array.from(off.data),
          true,
        );
      }
    }
  }
  const computed = await computeFeatures(options);
  await mkdir(options.dir, { recursive: true });
  await writeSafetensors(
    file,
    {
      image_features: { dtype: 'F32', shape: [computed.images.length / model.imageEncoder.hiddenSize, model.imageEncoder.hiddenSize], data: computed.images },
      text_features: { dtype: 'F32', shape: [computed.texts.length / model.textEncoder.hiddenSize, model.textEncoder.hiddenSize], data: computed.texts },
      caption_offsets: { dtype: 'I32', shape: [computed.offsets.length], data: computed.offsets },
    },
    { key, split: dataset.split },
  );
  return new CachedFeatures(
    tf.tensor2d(computed.images, [dataset.length, model.imageEncoder.hiddenSize]),
    tf.tensor2d(computed.texts, [computed.texts.length / model.textEncoder.hiddenSize, model.textEncoder.hiddenSize]),
    computed.offsets,
    false,
  );
}

async function computeFeatures(options: FeatureCacheOptions): Promise<{ images: Float32Array; texts: Float32Array; offsets: Int32Array }> {
  if ((options.replicas ?? 1) < 2) return computeWith(options, undefined);
  const pool = await EmbedPool.start(options.model, { replicas: options.replicas as number });
  try {
    return await computeWith(options, pool);
  } finally {
    pool.close();
  }
}

async function computeWith(o: FeatureCacheOptions, pool: EmbedPool | undefined): Promise<{ images: Float32Array; texts: Float32Array; offsets: Int32Array }> {
  const { model, dataset } = o;
  const hv = model.imageEncoder.hiddenSize;
  const images = new Float32Array(dataset.length * hv);
  const loader = new CaptionLoader(dataset, {
    batchSize: o.batchSize,
    imageProcessor: o.imageProcessor,
    tokenizer: o.tokenizer,
    maxLength: o.maxLength,
    captionPick: 'first',
  });
  for await (const batch of loader.batches(0)) {
    let data: Float32Array;
    try {
      const pixels = batch.pixelValues;
      data = await towerFeatures(pool && (() => pool.imageFeatures(pixels)), () => o.model.imageEncoder.encode(pixels, { training: false }));
    } finally {
      tf.dispose([batch.pixelValues, batch.inputIds, batch.attentionMask]);
    }
    batch.indices.forEach((idx, r) => images.set(data.subarray(r * hv, (r + 1) * hv), idx * hv));
  }
  const { texts, imageIndex } = allCaptions(dataset);
  const ht = model.textEncoder.hiddenSize;
  const textOut = new Float32Array(texts.length * ht);
  for (let start = 0; start < texts.length; start += o.batchSize) {
    const chunk = texts.slice(start, start + o.batchSize);
    const enc = o.tokenizer.encode(chunk, o.maxLength);
    const input = {
      inputIds: tf.tensor2d(enc.inputIds, [enc.batchSize, enc.seqLength], 'int32'),
      attentionMask: tf.tensor2d(enc.attentionMask, [enc.batchSize, enc.seqLength], 'int32'),
    };
    try {
      textOut.set(await towerFeatures(pool && (() => pool.textFeatures(input)), () => o.model.textEncoder.encode(input, { training: false })), start * ht);
    } finally {
      tf.dispose([input.inputIds, input.attentionMask]);
    }
  }
  const offsets = new Int32Array(dataset.length + 1);
  for (const i of imageIndex) offsets[i + 1] = (offsets[i + 1] as number) + 1;
  for (let i = 0; i < dataset.length; i++) offsets[i + 1] = (offsets[i + 1] as number) + (offsets[i] as number);
  return { images, texts: textOut, offsets };
}

/**
 * Tower features of borrowed inputs as a NEW array: from the pool when there is one (its request), else
 * from `encode` on this thread (the tensor it returns is disposed here).
 */
async function towerFeatures(fromPool: (() => Promise<Float32Array>) | undefined, encode: () => tf.Tensor): Promise<Float32Array> {
  if (fromPool) return fromPool();
  const f = encode();
  try {
    return (await f.data()) as Float32Array;
  } finally {
    f.dispose();
  }
}

/** A batch of cached features: row i of both is a matching pair. The consumer disposes both tensors. */
export interface FeatureBatch {
  imageFeatures: tf.Tensor2D;
  textFeatures: tf.Tensor2D;
  /** Dataset index of each row (as CaptionBatch.indices). */
  indices: number[];
  /** Which of the image's captions each row uses (as CaptionBatch.captionIndices). */
  captionIndices: number[];
  /** Caption text of each row (as CaptionBatch.captions). */
  captions: string[];
}

/** What the cached source needs from the loader it stands in for: its batch plan, caption picks and captions. */
export interface BatchPlan {
  plan(epoch: number): number[][];
  captionIndex(index: number, epoch: number): number;
  readonly dataset: Pick<ImageCaptionDataset, 'captions'>;
}

/**
 * Batches of cached features in exactly the order and with exactly the caption picks of the CaptionLoader
 * `plan` (same seed → same batches), so cached training reproduces uncached frozen training.
 * `fixedEpoch` pins the picks (validation uses epoch 0's every time).
 */
export class CachedFeatureSource implements BatchSource<FeatureBatch> {
  constructor(
    private readonly features: CachedFeatures,
    private readonly planner: BatchPlan,
    private readonly fixedEpoch?: number,
  ) {}

  async *batches(epoch: number, options: { startBatch?: number } = {}): AsyncIterable<FeatureBatch> {
    const e = this.fixedEpoch ?? epoch;
    const offsets = this.features.captionOffsets;
    for (const indices of this.planner.plan(e).slice(options.startBatch ?? 0)) {
      const picks = indices.map((i) => this.planner.captionIndex(i, e));
      const rows = indices.map((i, k) => (offsets[i] as number) + (picks[k] as number));
      const captions = indices.map((i, k) => this.planner.dataset.captions(i)[picks[k] as number] as string);
      const tensors = tf.tidy(() => ({
        imageFeatures: tf.gather(this.features.imageFeatures, tf.tensor1d(indices, 'int32')) as tf.Tensor2D,
        textFeatures: tf.gather(this.features.textFeatures, tf.tensor1d(rows, 'int32')) as tf.Tensor2D,
      }));
      yield { ...tensors, indices, captionIndices: picks, captions };
    }
  }
}

/** Training on cached features: only the heads (and the logit scale) run. */
export function cachedFeatureTask(model: CLIPModel, targets: TargetMode = 'auto'): TrainTask<FeatureBatch> {
  const loss = (b: FeatureBatch, training: boolean) =>
    tf.tidy(() => {
      const positives = batchPositives(targets, b);
      return model.lossFromFeatures(b.imageFeatures, b.textFeatures, { training, ...(positives ? { positives } : {}) });
    });
  return {
    trainLoss: (b) => loss(b, true),
    evalOutputs: (b): EvalOutputs =>
      tf.tidy(() => ({
        loss: loss(b, false),
        imageEmbeds: model.projectImageFeatures(b.imageFeatures),
        textEmbeds: model.projectTextFeatures(b.textFeatures),
      })),
    batchSize: (b) => b.imageFeatures.shape[0],
    disposeBatch: (b) => tf.dispose([b.imageFeatures, b.textFeatures]),
  };
}
