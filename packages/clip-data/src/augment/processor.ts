import { ConfigError, DataError, type DecodedRgb, type ImageProcessor } from '@clip-ts/core';
import type { SampleAugmentation } from './augmenter.js';

/**
 * An ImageProcessor that augments one sample: the base processor decodes (full size), the augmentation
 * crops/resizes/flips/jitters to the base's output size, and the base normalises the result (its resize is
 * then a no-op). Built per (epoch, index) by the loader; holds no tensors.
 */
export class AugmentingProcessor implements ImageProcessor {
  readonly height: number;
  readonly width: number;

  constructor(
    private readonly base: ImageProcessor,
    private readonly augmentation: SampleAugmentation,
  ) {
    this.height = base.height;
    this.width = base.width;
  }

  async processFile(path: string): Promise<Float32Array> {
    if (!this.base.decodeFile) throw noDecoder();
    return this.finish(await this.base.decodeFile(path), path);
  }

  async processBuffer(bytes: Uint8Array, source: string): Promise<Float32Array> {
    if (!this.base.decodeBuffer) throw noDecoder();
    return this.finish(await this.base.decodeBuffer(bytes, source), source);
  }

  async processRaw(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, source: string): Promise<Float32Array> {
    if (pixels.length !== width * height * channels) {
      throw new DataError(`image ${source}: ${pixels.length} bytes for ${width}x${height}x${channels}`);
    }
    if (channels === 4) throw new DataError(`image ${source}: augmentation takes RGB or gray pixels, not RGBA`);
    let rgb = pixels;
    if (channels === 1) {
      rgb = new Uint8Array(width * height * 3);
      for (let i = 0; i < width * height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = pixels[i] as number;
    }
    return this.finish({ data: rgb, width, height }, source);
  }

  fingerprint(): string {
    return `augmented:${this.base.fingerprint()}`;
  }

  private finish(img: DecodedRgb, source: string): Promise<Float32Array> {
    const out = this.augmentation.apply(img.data, img.width, img.height, this.width, this.height, source);
    return this.base.processRaw(out, this.width, this.height, 3, source);
  }
}

function noDecoder(): ConfigError {
  return new ConfigError('augment: the image processor cannot decode without resizing (no decodeFile/decodeBuffer); use ClipImageProcessor from @clip-ts/encoders/node');
}
