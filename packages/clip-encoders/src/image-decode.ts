/**
 * Image decoding (Node): files and encoded bytes (JPEG, PNG, WebP, GIF, TIFF, AVIF) through sharp, then
 * the pixel pipeline of ClipPixelProcessor (./image-processor.ts, browser-safe).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { ConfigError, DataError, type DecodedRgb, type ImageProcessor } from '@clip-ts/core';
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

/** The full `ImageProcessor`: decodes files and bytes, then resizes and normalises like ClipPixelProcessor. */
export class ClipImageProcessor extends ClipPixelProcessor implements ImageProcessor {
  async processFile(path: string): Promise<Float32Array> {
    return this.processBuffer(await readImageFile(path), path);
  }

  async processBuffer(bytes: Uint8Array, source: string): Promise<Float32Array> {
    const { resizer, doResize, shortestEdge, width, height, resample } = this.options;
    const sharpResize = resizer === 'sharp' && doResize && shortestEdge === undefined;
    const img = await this.decode(bytes, source, sharpResize ? { width, height, kernel: SHARP_KERNEL[resample] } : undefined);
    return this.fromRgb8(img.data, img.width, img.height, source);
  }

  /** Decode to RGB at the stored size (no resize): what training augmentation crops from. */
  async decodeFile(path: string): Promise<DecodedRgb> {
    return this.decode(await readImageFile(path), path);
  }

  async decodeBuffer(bytes: Uint8Array, source: string): Promise<DecodedRgb> {
    return this.decode(bytes, source);
  }

  private async decode(
    bytes: Uint8Array,
    source: string,
    resize?: { width: number; height: number; kernel: (typeof SHARP_KERNEL)[ResampleFilter] },
  ): Promise<DecodedRgb> {
    let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
    try {
      // failOn 'warning' (sharp's default, spelled out): a truncated JPEG is an error, not a grey band.
      let img = sharp(bytes, { failOn: 'warning' });
      img = this.options.alpha === 'white' ? img.flatten({ background: { r: 255, g: 255, b: 255 } }) : img.removeAlpha();
      if (resize) img = img.resize(resize.width, resize.height, { fit: 'fill', kernel: resize.kernel, fastShrinkOnLoad: false });
      decoded = await img.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw new DataError(`cannot decode image ${source}: ${(err as Error).message}`, { cause: err });
    }
    const { data, info } = decoded;
    if (info.channels !== 3) throw new DataError(`image ${source}: decoded to ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  }
}

async function readImageFile(path: string): Promise<Buffer> {
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

