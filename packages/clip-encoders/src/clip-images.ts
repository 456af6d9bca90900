import * as tf from '@tensorflow/tfjs-core';
import { DataError, ShapeError, ValueError } from '@clip-ts/core';
import type { CLIPImageProcessor } from './platform/types.js';

/** CLIP's image inputs: validation, processing and batching into pixel tensors. */

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
  /**
   * Computes each batch's L2-normalised embeddings in place of the model's own call, with the same
   * model's weights: e.g. @clip-ts/train's EmbedPool, which splits a batch over worker-thread replicas.
   * Returns a new row-major [rows, dim] array; inputs are borrowed.
   */
  encoder?: BatchEncoder;
}

/** See BatchOptions.encoder (EmbedPool fits). */
export interface BatchEncoder {
  embedImages(pixels: tf.Tensor4D): Promise<Float32Array>;
  embedTexts(input: { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D }): Promise<Float32Array>;
}

/** One image row: an input to process, or row `index` of a tensor the caller passed. */
export type ImageRow = { input: Exclude<CLIPImage, tf.Tensor>; label: string } | { tensor: tf.Tensor3D | tf.Tensor4D; index: number };

const DEFAULT_BATCH = 32;

export function batchSize(options: BatchOptions): number {
  const size = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(size) || size < 1) throw new ValueError(`CLIP: batchSize must be a positive integer, got ${size}`);
  return size;
}

function isPixels(x: unknown): x is RgbPixels {
  if (typeof x !== 'object' || x === null) return false;
  const p = x as Partial<RgbPixels>;
  return (p.data instanceof Uint8Array || p.data instanceof Uint8ClampedArray) && Number.isInteger(p.width) && Number.isInteger(p.height);
}

/** Validate every input before any work (so a bad last image fails fast), expanding batched tensors into rows. */
export function imageRows(images: readonly CLIPImage[], processor: CLIPImageProcessor): ImageRow[] {
  if (!Array.isArray(images)) throw new ValueError('CLIP: images must be an array');
  if (images.length === 0) throw new ValueError('CLIP: no images');
  const { height: H, width: W } = processor;
  const rows: ImageRow[] = [];
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

/** A non-tensor input → processed CHW float32 (errors are DataErrors naming the file or image). */
function process(row: Exclude<ImageRow, { tensor: unknown }>, processor: CLIPImageProcessor): Promise<Float32Array> {
  const { input, label } = row;
  if (typeof input === 'string') return processor.processFile(input);
  if (input instanceof Uint8Array) return processor.processBuffer(input, label);
  if (input instanceof ArrayBuffer) return processor.processBuffer(new Uint8Array(input), label);
  const { data, width, height } = input;
  const channels = input.channels ?? data.length / (width * height);
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    return Promise.reject(new DataError(`${label}: ${data.length} bytes for ${width}×${height} is not 1, 3 or 4 channels`));
  }
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.length);
  return processor.processRaw(bytes, width, height, channels, label);
}

/**
 * Pixel tensors [≤ batchSize, 3, H, W] of consecutive rows, handed to `fn` and disposed after it;
 * `onProgress` after each batch. Only one batch is decoded and on the backend at a time.
 */
export async function eachPixelBatch(
  rows: readonly ImageRow[],
  processor: CLIPImageProcessor,
  options: BatchOptions,
  fn: (pixels: tf.Tensor4D, start: number) => Promise<void>,
): Promise<void> {
  const size = batchSize(options);
  const { height: H, width: W } = processor;
  for (let start = 0; start < rows.length; start += size) {
    const chunk = rows.slice(start, start + size);
    const processed = await Promise.all(chunk.map((r) => ('tensor' in r ? undefined : process(r, processor))));
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
