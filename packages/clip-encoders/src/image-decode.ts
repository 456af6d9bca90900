/**
 * Image decoding (Node): files and encoded bytes (JPEG, PNG, WebP, GIF, TIFF, AVIF) through sharp, then
 * the pixel pipeline of ClipPixelProcessor (./image-processor.ts, browser-safe).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { ConfigError, DataError, type ImageProcessor } from '@clip-ts/core';
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
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new DataError(`cannot read image ${path}: ${(err as Error).message}`, { cause: err });
    }
    return this.processBuffer(bytes, path);
  }

  async processBuffer(bytes: Uint8Array, source: string): Promise<Float32Array> {
    let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
    try {
      // failOn 'warning' (sharp's default, spelled out): a truncated JPEG is an error, not a grey band.
      let img = sharp(bytes, { failOn: 'warning' });
      img = this.options.alpha === 'white' ? img.flatten({ background: { r: 255, g: 255, b: 255 } }) : img.removeAlpha();
      const { resizer, doResize, shortestEdge, width, height, resample } = this.options;
      if (resizer === 'sharp' && doResize && shortestEdge === undefined) {
        img = img.resize(width, height, { fit: 'fill', kernel: SHARP_KERNEL[resample], fastShrinkOnLoad: false });
      }
      decoded = await img.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw new DataError(`cannot decode image ${source}: ${(err as Error).message}`, { cause: err });
    }
    const { data, info } = decoded;
    if (info.channels !== 3) throw new DataError(`image ${source}: decoded to ${info.channels} channels, expected 3`);
    return this.fromRgb8(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, source);
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

