/**
 * Image decoding (Node): files and encoded bytes (JPEG, PNG, WebP, GIF, TIFF, AVIF) through sharp, then
 * the pixel pipeline of ClipPixelProcessor (./image-processor.ts, browser-safe).
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { ConfigError, DataError, ValueError, type DecodedRgb, type ImageProcessor } from '@clip-ts/core';
import { readJson } from './files.js';
import { ClipPixelProcessor, optionsFromPreprocessorConfig, type ImageProcessorOptions } from './image-processor.js';
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

export interface ProcessFilesOptions {
  /**
   * Images decoded at once (each decode runs on one of libuv's threads, so this is how many cores the
   * batch uses). Default: os.availableParallelism().
   */
  concurrency?: number;
}

/**
 * The full `ImageProcessor`: decodes files and bytes, then resizes and normalises like ClipPixelProcessor.
 * With the default `resizer: 'sharp'`, an image that shrinks is resized by libvips in the decoding
 * pipeline (one pass, off the JS thread, no full-size RGB copy in JS); others take the Pillow transcription.
 */
export class ClipImageProcessor extends ClipPixelProcessor implements ImageProcessor {
  /** A new CHW float32 array, owned by the caller. */
  async processFile(path: string): Promise<Float32Array> {
    return this.decodeInto(await readBytes(path), path);
  }

  /** A new CHW float32 array, owned by the caller. */
  async processBuffer(bytes: Uint8Array, source: string): Promise<Float32Array> {
    return this.decodeInto(bytes, source);
  }

  /**
   * Every file of `paths`, decoded `concurrency` at a time, into ONE float32 buffer laid out
   * [paths.length, 3, height, width] (what `tf.tensor4d` takes without another copy). The caller owns it.
   * The first bad file rejects the whole batch with its DataError.
   */
  async processFiles(paths: readonly string[], options: ProcessFilesOptions = {}): Promise<Float32Array> {
    const concurrency = options.concurrency ?? availableParallelism();
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new ValueError(`processFiles: concurrency must be a positive integer, got ${concurrency}`);
    }
    const per = 3 * this.height * this.width;
    const out = new Float32Array(paths.length * per);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < paths.length) {
        const i = next++;
        const path = paths[i] as string;
        await this.decodeInto(await readBytes(path), path, out, i * per);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
    return out;
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
    const img = await this.decode(bytes, source, true);
    return this.fromRgb8(img.data, img.width, img.height, source, out, offset);
  }

  /** RGB8 of `bytes`; with `resize`, libvips also resizes when shrinksInSharp says it should. */
  private async decode(bytes: Uint8Array, source: string, resize: boolean): Promise<DecodedRgb> {
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

