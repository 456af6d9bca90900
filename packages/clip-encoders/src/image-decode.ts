/**
 * Image decoding (Node): plain JPEGs through libjpeg-turbo (./jpeg-turbo.ts), everything else (PNG, WebP,
 * GIF, TIFF, AVIF, CMYK/ICC JPEGs) through sharp, then the pixel pipeline of ClipPixelProcessor
 * (./image-processor.ts, browser-safe). Batches of files run on a worker-thread pool (./image-pool.ts).
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { ConfigError, DataError, ShapeError, ValueError, type DecodedRgb, type ImageProcessor } from '@clip-ts/core';
import { readJson } from './files.js';
import { ClipPixelProcessor, optionsFromPreprocessorConfig, type ImageProcessorOptions } from './image-processor.js';
import { ImageWorkerPool } from './image-pool.js';
import { TurboJpegDecoder } from './jpeg-turbo.js';
import type { ResampleFilter } from './resample.js';

/** Closest libvips kernel per filter, for `resizer: 'sharp'` (libvips has no box/hamming reducer). */
const SHARP_KERNEL = {
  nearest: 'nearest',
  box: 'linear',
  bilinear: 'linear',
  hamming: 'linear',
  bicubic: 'cubic',
  lanczos: 'lanczos3',
} as const satisfies Record<ResampleFilter, 'nearest' | 'linear' | 'cubic' | 'lanczos3'>;

/** Worker pools by processor fingerprint and size (see workerPool). */
const POOLS = new Map<string, ImageWorkerPool>();

export interface ProcessFilesOptions {
  /**
   * Worker threads that decode the batch (each writes its images straight into the batch buffer).
   * Default: os.availableParallelism(). 0: decode on the calling thread, `concurrency` images at once.
   */
  workers?: number;
  /** With `workers: 0`: images decoded at once (sharp's decodes run on libuv threads). Default: os.availableParallelism(). */
  concurrency?: number;
  /**
   * Write the batch here (at least paths.length * 3 * height * width floats, image i at i * 3*h*w) instead
   * of a new array. Reusing one buffer per batch avoids ~2 ms/image of page faults on fresh memory; one
   * from `newBatchBuffer` (SharedArrayBuffer) lets the workers write into it without a copy.
   */
  out?: Float32Array;
}

/**
 * The full `ImageProcessor`: decodes files and bytes, then resizes and normalises like ClipPixelProcessor.
 * Plain JPEGs decode with libjpeg-turbo (option `decoder`), the rest with sharp. With `resizer: 'sharp'`,
 * sharp decodes everything and resizes images that shrink inside libvips.
 */
export class ClipImageProcessor extends ClipPixelProcessor implements ImageProcessor {
  /** Reused JPEG output buffer: decode and fromRgb8 run back to back without an await between them. */
  private readonly jpeg = new TurboJpegDecoder();
  private pool: ImageWorkerPool | undefined;
  /** Shared staging buffer for processFiles into a caller's non-shared `out`. */
  private staging: Float32Array | undefined;

  /** A new CHW float32 array, owned by the caller. */
  async processFile(path: string): Promise<Float32Array> {
    return this.decodeInto(await readBytes(path), path);
  }

  /** A new CHW float32 array, owned by the caller. */
  async processBuffer(bytes: Uint8Array, source: string): Promise<Float32Array> {
    return this.decodeInto(bytes, source);
  }

  /** processFile written into `out` at float offset `offset` (a batch buffer the caller owns). */
  async processFileInto(path: string, out: Float32Array, offset: number): Promise<void> {
    await this.decodeInto(await readBytes(path), path, out, offset);
  }

  /** processBuffer written into `out` at float offset `offset`. */
  async processBufferInto(bytes: Uint8Array, source: string, out: Float32Array, offset: number): Promise<void> {
    await this.decodeInto(bytes, source, out, offset);
  }

  /**
   * A zeroed float32 buffer for `count` images on a SharedArrayBuffer: pass it as processFiles' `out`
   * batch after batch. The caller owns it; note that tfjs' cpu backend keeps a reference to the array a
   * tensor is made from (wasm/webgl copy it), so refill it only after such a tensor is disposed.
   */
  newBatchBuffer(count: number): Float32Array {
    return new Float32Array(new SharedArrayBuffer(count * 3 * this.height * this.width * 4));
  }

  /**
   * Every file of `paths` into ONE float32 buffer laid out [paths.length, 3, height, width] (what
   * `tf.tensor4d` takes without another copy): `options.out` when given (returned as is, the caller's),
   * else a new array the caller owns. Same values as processFile of each path. The first bad file rejects
   * the whole batch with its DataError (once no image is still being written).
   */
  async processFiles(paths: readonly string[], options: ProcessFilesOptions = {}): Promise<Float32Array> {
    const workers = options.workers ?? availableParallelism();
    const concurrency = options.concurrency ?? availableParallelism();
    if (!Number.isInteger(workers) || workers < 0) {
      throw new ValueError(`processFiles: workers must be a non-negative integer, got ${workers}`);
    }
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new ValueError(`processFiles: concurrency must be a positive integer, got ${concurrency}`);
    }
    const per = 3 * this.height * this.width;
    const need = paths.length * per;
    if (options.out && options.out.length < need) {
      throw new ShapeError(`processFiles: out has ${options.out.length} floats, ${paths.length} images need ${need}`);
    }
    if (workers === 0 || paths.length === 0) {
      const out = options.out ?? new Float32Array(need);
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < paths.length) {
          const i = next++;
          const path = paths[i] as string;
          await this.decodeInto(await readBytes(path), path, out, i * per);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, lane));
      return out;
    }
    const pool = this.workerPool(workers);
    const out = options.out ?? this.newBatchBuffer(paths.length);
    if (out.buffer instanceof SharedArrayBuffer) {
      await pool.run(paths, out, per);
    } else {
      if (!this.staging || this.staging.length < need) this.staging = this.newBatchBuffer(paths.length);
      await pool.run(paths, this.staging, per);
      out.set(this.staging.subarray(0, need));
    }
    return out;
  }

  /**
   * Stops processFiles' worker threads (shared with processors of the same options, which start new ones
   * when they next need them). They are unref'd, so this is only needed to free them early.
   */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }

  private workerPool(size: number): ImageWorkerPool {
    // Shared by processors with the same options: idle workers stay alive (unref'd) until closed, so
    // code that makes a processor per folder or per command must not pile up threads.
    const key = `${this.fingerprint()}:${size}`;
    let pool = POOLS.get(key);
    if (!pool || pool.isClosed) {
      pool = new ImageWorkerPool(this.options, size);
      POOLS.set(key, pool);
    }
    this.pool = pool;
    return pool;
  }

  /** Decode to RGB at the stored size (no resize): what training augmentation crops from. A new array, the caller's. */
  async decodeFile(path: string): Promise<DecodedRgb> {
    return this.decode(await readBytes(path), path, false);
  }

  /** As decodeFile, from encoded bytes. */
  async decodeBuffer(bytes: Uint8Array, source: string): Promise<DecodedRgb> {
    return this.decode(bytes, source, false);
  }

  /** Decode `bytes`, then resize + normalise into `out` at `offset` (or a new array); returns the array. */
  private async decodeInto(bytes: Uint8Array, source: string, out?: Float32Array, offset = 0): Promise<Float32Array> {
    // libjpeg-turbo's result lives in this.jpeg's buffer: fromRgb8 consumes it before any other decode runs.
    const fast = this.turboDecode(bytes);
    if (fast) return this.fromRgb8(fast.data, fast.width, fast.height, source, out, offset);
    const img = await this.decode(bytes, source, true);
    return this.fromRgb8(img.data, img.width, img.height, source, out, offset);
  }

  /** RGB8 through libjpeg-turbo (a view of this.jpeg's buffer) when the options and the file allow, else null. */
  private turboDecode(bytes: Uint8Array): DecodedRgb | null {
    return this.options.decoder === 'turbo' && this.options.resizer !== 'sharp' ? this.jpeg.decode(bytes) : null;
  }

  /** RGB8 of `bytes` (a new array); with `resize`, libvips also resizes when shrinksInSharp says it should. */
  private async decode(bytes: Uint8Array, source: string, resize: boolean): Promise<DecodedRgb> {
    if (!resize) {
      const fast = this.turboDecode(bytes);
      if (fast) return { data: fast.data.slice(), width: fast.width, height: fast.height };
    }
    let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
    try {
      // failOn 'warning' (sharp's default, spelled out): a truncated JPEG is an error, not a grey band.
      // sequentialRead: libvips streams the decode through the resize instead of decoding whole first.
      let img = sharp(bytes, { failOn: 'warning', sequentialRead: true });
      if (resize && (await this.shrinksInSharp(img))) {
        const { width, height, resample } = this.options;
        // No shrink-on-load: JPEG's DCT-domain downscaling is faster but adds aliasing Pillow has not.
        img = img.resize(width, height, { fit: 'fill', kernel: SHARP_KERNEL[resample], fastShrinkOnLoad: false });
      }
      img = this.options.alpha === 'white' ? img.flatten({ background: { r: 255, g: 255, b: 255 } }) : img.removeAlpha();
      decoded = await img.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw new DataError(`cannot decode image ${source}: ${(err as Error).message}`, { cause: err });
    }
    const { data, info } = decoded;
    if (info.channels !== 3) throw new DataError(`image ${source}: decoded to ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  }

  /** Whether libvips does the resize: the 'sharp' resizer, a plain resize, and no dimension grows. */
  private async shrinksInSharp(img: Sharp): Promise<boolean> {
    const { resizer, doResize, shortestEdge, width, height } = this.options;
    if (resizer !== 'sharp' || !doResize || shortestEdge !== undefined) return false;
    const meta = await img.metadata(); // header only; the pipeline reuses the same input
    return meta.width !== undefined && meta.height !== undefined && meta.width >= width && meta.height >= height;
  }
}

async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new DataError(`cannot read image ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The image processor of a model directory: its `preprocessor_config.json` when present (validated),
 * else the defaults (224 × 224, CLIP mean/std, bilinear). `overrides` win over the file — e.g. the
 * reference normalised the ViT (whose config says mean = std = 0.5) with CLIP's mean/std.
 */
export async function loadImageProcessor(dir: string, overrides: ImageProcessorOptions = {}): Promise<ClipImageProcessor> {
  const path = join(dir, 'preprocessor_config.json');
  const file = await readJson(path, { error: (m, o) => new ConfigError(m, o), optional: true });
  const fromFile = file ? optionsFromPreprocessorConfig(file.value, path) : {};
  return new ClipImageProcessor({ ...fromFile, ...overrides });
}

