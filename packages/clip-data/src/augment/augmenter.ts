import { DataError, Rng, hash32 } from '@clip-ts/core';
import { adjustBrightness, adjustContrast, adjustSaturation, hflip } from './colour.js';
import { randomResizedCropBox, type CropBox, type CropDraws } from './crop-box.js';
import { factorRange, type ResolvedAugmentOptions } from './options.js';
import { resizedCrop } from './resized-crop.js';

const AUGMENT_SALT = 0x4155_4745;

const JITTER_OPS = {
  brightness: adjustBrightness,
  contrast: adjustContrast,
  saturation: adjustSaturation,
} as const;
type JitterOp = keyof typeof JITTER_OPS;

/** What one image gets: drawn from (seed, epoch, index) only, so order of decoding and resume do not matter. */
export interface SampleAugmentation {
  /**
   * Augment interleaved RGB uint8 pixels of `width`×`height` into a new `outWidth`×`outHeight` RGB uint8
   * image (crop → resize → flip → jitter, then rounded back to bytes, as torchvision on PIL images does).
   */
  apply(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number, source: string): Uint8Array;
}

/** The seeded augmentation of a training set: one {@link SampleAugmentation} per (epoch, index). */
export class Augmenter {
  private readonly base: number;

  constructor(
    readonly options: ResolvedAugmentOptions,
    seed: number,
  ) {
    this.base = hash32(seed >>> 0, AUGMENT_SALT);
  }

  /** True when some part is on (an empty `{}` augments nothing). */
  get active(): boolean {
    const o = this.options;
    return o.randomResizedCrop !== undefined || (o.hflip ?? 0) > 0 || o.colorJitter !== undefined;
  }

  forSample(epoch: number, index: number): SampleAugmentation {
    const seed = hash32(hash32(this.base, epoch), index);
    return { apply: (rgb, w, h, ow, oh, source) => this.apply(new Rng(seed), rgb, w, h, ow, oh, source) };
  }

  private apply(rng: Rng, rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number, source: string): Uint8Array {
    if (rgb.length !== width * height * 3) throw new DataError(`image ${source}: ${rgb.length} bytes for ${width}x${height} RGB`);
    const o = this.options;
    // Draw everything first, in a fixed order, so the stream never depends on pixel values.
    const draws: CropDraws = { uniform: (lo, hi) => lo + (hi - lo) * rng.next(), int: (lo, hi) => lo + rng.int(hi - lo) };
    const crop = o.randomResizedCrop;
    const box: CropBox = crop ? randomResizedCropBox(width, height, crop.scale, crop.ratio, draws) : { top: 0, left: 0, height, width };
    const flip = o.hflip !== undefined && o.hflip > 0 && rng.next() < o.hflip;
    const jitter: Array<[JitterOp, number]> = [];
    if (o.colorJitter) {
      for (const op of rng.shuffle(['brightness', 'contrast', 'saturation'] as JitterOp[])) {
        const amount = o.colorJitter[op];
        if (amount === undefined) continue;
        const [lo, hi] = factorRange(amount);
        jitter.push([op, lo + (hi - lo) * rng.next()]);
      }
    }
    const plane = width * height;
    const chw = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      chw[i] = (rgb[3 * i] as number) / 255;
      chw[plane + i] = (rgb[3 * i + 1] as number) / 255;
      chw[2 * plane + i] = (rgb[3 * i + 2] as number) / 255;
    }
    const out = resizedCrop(chw, 3, height, width, box, outHeight, outWidth);
    if (flip) hflip(out, 3, outHeight, outWidth);
    for (const [op, factor] of jitter) JITTER_OPS[op](out, factor);
    const outPlane = outWidth * outHeight;
    const bytes = new Uint8Array(3 * outPlane);
    for (let i = 0; i < outPlane; i++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.round((out[c * outPlane + i] as number) * 255);
        bytes[3 * i + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
    return bytes;
  }
}
