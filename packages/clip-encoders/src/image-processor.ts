/**
 * Image preprocessing: decode (libjpeg-turbo or sharp, Node: ./image-decode.ts) → RGB → resize (Pillow-exact, see resample.ts) → rescale/normalise →
 * float32 CHW, the layout the ViT tower takes (NCHW once batched).
 *
 * Choices, and why:
 * - Decoding uses sharp/libvips (JPEG, PNG, WebP, GIF, TIFF, AVIF). No EXIF auto-rotation and no colour
 *   management beyond libvips' sRGB conversion — PIL's `Image.open(...).convert('RGB')` does neither either.
 * - Gray → RGB by replicating the channel; alpha is DROPPED by default (the colour values are kept as
 *   stored), like PIL's `convert('RGB')` and HF's `convert_rgb`, so pixels match the reference pipeline.
 *   `alpha: 'white'` composites onto white instead (nicer for logos/icons with transparent backgrounds).
 * - Resize is a plain resize to height × width (aspect not kept), as the reference did (224 × 224),
 *   with Pillow's bilinear filter (what torchvision `Resize` and HF `ViTImageProcessor` use on PIL images).
 *   The Pillow transcription is the default; `resizer: 'sharp'` lets libvips resize shrinking files while
 *   decoding. Plain JPEGs decode with libjpeg-turbo (option `decoder`), the rest with sharp.
 * - Everything after decoding is plain JS on pixel arrays (ClipPixelProcessor), so it runs in a browser on
 *   pixels from a canvas (`getImageData` → processRaw(…, 4, …)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, DataError, ShapeError, ValueError, formatZodIssues } from '@clip-ts/core';
import { z } from 'zod';
import { ResizeScratch, resizeRgb8Into, type ResampleFilter } from './resample.js';

/** OpenAI CLIP normalisation (what the reference used, also for the ViT tower). */
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export interface ImageProcessorOptions {
  /** Output size. Default 224 × 224. */
  height?: number;
  width?: number;
  /**
   * Resize the shortest edge to this length (keeping aspect), then centre-crop to height × width
   * (HF CLIPImageProcessor style). Default: undefined = plain resize to height × width.
   */
  shortestEdge?: number;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  /** Default 'bilinear' (Pillow's, antialiased when shrinking). */
  resample?: ResampleFilter;
  /** Default true. When false, images must already be height × width. */
  doResize?: boolean;
  /** Multiply uint8 values by rescaleFactor (default true, 1/255). */
  doRescale?: boolean;
  rescaleFactor?: number;
  /** (x - mean) / std after rescaling (default true). */
  doNormalize?: boolean;
  /** What to do with an alpha channel: 'drop' it (default, like PIL convert('RGB')) or composite on 'white'. */
  alpha?: 'drop' | 'white';
  /**
   * 'pillow' (default): our transcription of Pillow's resampling, bit-identical to Pillow's resize
   * (torchvision `Resize` on PIL images, HF image processors) on the same RGB pixels.
   * 'sharp': for files and bytes that shrink (or keep) both dimensions in a plain resize, libvips resizes
   * inside sharp's decoding pipeline (sharp then decodes every file: `decoder` is ignored); a few grey levels
   * from Pillow with 'bilinear' (image-fast-path.test.ts bounds it). Enlargements, shortest-edge + crop and
   * processRaw(Sync) always use the Pillow transcription, because libvips' enlargement grid is
   * corner-aligned (up to half a source pixel off).
   */
  resizer?: 'pillow' | 'sharp';
  /**
   * Node file/byte decoding. 'turbo' (default): plain JPEGs (8-bit gray/YCbCr, no ICC profile) decode
   * with libjpeg-turbo's fast integer IDCT — ~4× less CPU than sharp, but up to a few grey levels from
   * Pillow's decode (image-fast-path.test.ts states and bounds it); every other file, and every JPEG
   * libjpeg-turbo rejects, goes to sharp. 'sharp': sharp/libvips for everything, whose JPEG decode is
   * Pillow's bit for bit, so `{ decoder: 'sharp' }` (with the default resizer) reproduces PIL +
   * torchvision exactly.
   */
  decoder?: 'turbo' | 'sharp';
}

export type ResolvedImageProcessorOptions = Required<Omit<ImageProcessorOptions, 'shortestEdge'>> & { shortestEdge: number | undefined };

/** HF `PILImageResampling` codes → our filters (0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING). */
const HF_RESAMPLE: readonly ResampleFilter[] = ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming'];

const positiveInt = z.number().int().positive();
const triple = z.union([z.number(), z.array(z.number()).length(3)]);
const hwSize = z.object({ height: positiveInt, width: positiveInt });

/** HF `preprocessor_config.json`; unknown keys (image_processor_type, …) are allowed and ignored. */
export const preprocessorConfigSchema = z.looseObject({
  size: z.union([positiveInt, hwSize, z.looseObject({ shortest_edge: positiveInt })]).optional(),
  crop_size: z.union([positiveInt, hwSize]).optional(),
  do_center_crop: z.boolean().optional(),
  do_resize: z.boolean().optional(),
  do_rescale: z.boolean().optional(),
  rescale_factor: z.number().positive().optional(),
  do_normalize: z.boolean().optional(),
  image_mean: triple.optional(),
  image_std: triple.refine((v) => (Array.isArray(v) ? v.every((s) => s > 0) : v > 0), 'std must be > 0').optional(),
  resample: z.number().int().min(0).max(5).optional(),
  do_convert_rgb: z.boolean().optional(),
});
export type PreprocessorConfig = z.infer<typeof preprocessorConfigSchema>;

function toTriple(v: number | number[]): [number, number, number] {
  return Array.isArray(v) ? [v[0] as number, v[1] as number, v[2] as number] : [v, v, v];
}

/**
 * Options from a parsed preprocessor_config.json. `size` as an int means a square for ViT-style configs
 * and the shortest edge when `do_center_crop` is set (CLIP-style), as HF's `get_size_dict` does.
 */
export function optionsFromPreprocessorConfig(json: unknown, source: string): ImageProcessorOptions {
  const parsed = preprocessorConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(`${source}: invalid preprocessor config:\n${formatZodIssues(parsed.error.issues)}`);
  }
  const c = parsed.data;
  const o: ImageProcessorOptions = {};
  const crop = c.do_center_crop && c.crop_size !== undefined ? c.crop_size : undefined;
  const cropHw = typeof crop === 'number' ? { height: crop, width: crop } : crop;
  if (typeof c.size === 'number') {
    if (c.do_center_crop) o.shortestEdge = c.size;
    else o.height = o.width = c.size;
  } else if (c.size && 'height' in c.size) {
    o.height = c.size.height as number;
    o.width = c.size.width as number;
  } else if (c.size && 'shortest_edge' in c.size) {
    o.shortestEdge = c.size.shortest_edge;
  }
  if (o.shortestEdge !== undefined) {
    o.height = cropHw?.height ?? o.shortestEdge;
    o.width = cropHw?.width ?? o.shortestEdge;
  }
  if (c.do_resize !== undefined) o.doResize = c.do_resize;
  if (c.do_rescale !== undefined) o.doRescale = c.do_rescale;
  if (c.rescale_factor !== undefined) o.rescaleFactor = c.rescale_factor;
  if (c.do_normalize !== undefined) o.doNormalize = c.do_normalize;
  if (c.image_mean !== undefined) o.mean = toTriple(c.image_mean);
  if (c.image_std !== undefined) o.std = toTriple(c.image_std);
  if (c.resample !== undefined) o.resample = HF_RESAMPLE[c.resample] as ResampleFilter;
  return o;
}

/**
 * The pixel half of the image processor: raw RGB / gray / RGBA pixels → resized, normalised float32 CHW.
 * Browser-safe. ClipImageProcessor (`@clip-ts/encoders/node`) adds file and byte decoding. Holds no
 * tensors; safe to share across loaders.
 */
export class ClipPixelProcessor {
  readonly height: number;
  readonly width: number;
  readonly options: Readonly<ResolvedImageProcessorOptions>;
  /** value = lut[c * 256 + byte]: rescale + normalise folded into one table per channel. */
  private readonly lut: Float32Array;
  /** Resize intermediates reused across images (fromRgb8 is synchronous, so one per processor is safe). */
  private readonly scratch = new ResizeScratch();

  constructor(options: ImageProcessorOptions = {}) {
    const o: ResolvedImageProcessorOptions = {
      height: options.height ?? 224,
      width: options.width ?? 224,
      shortestEdge: options.shortestEdge,
      mean: options.mean ?? CLIP_MEAN,
      std: options.std ?? CLIP_STD,
      resample: options.resample ?? 'bilinear',
      doResize: options.doResize ?? true,
      doRescale: options.doRescale ?? true,
      rescaleFactor: options.rescaleFactor ?? 1 / 255,
      doNormalize: options.doNormalize ?? true,
      alpha: options.alpha ?? 'drop',
      resizer: options.resizer ?? 'pillow',
      decoder: options.decoder ?? 'turbo',
    };
    for (const k of ['height', 'width'] as const) {
      if (!Number.isInteger(o[k]) || o[k] <= 0) throw new ValueError(`image processor: ${k} must be a positive integer, got ${o[k]}`);
    }
    if (o.shortestEdge !== undefined && (!Number.isInteger(o.shortestEdge) || o.shortestEdge <= 0)) {
      throw new ValueError(`image processor: shortestEdge must be a positive integer, got ${o.shortestEdge}`);
    }
    if (o.mean.length !== 3 || o.std.length !== 3 || o.std.some((s) => !(s > 0))) {
      throw new ValueError('image processor: mean and std need 3 values, std > 0');
    }
    if (!HF_RESAMPLE.includes(o.resample)) throw new ValueError(`image processor: unknown resample '${String(o.resample)}'`);
    this.options = Object.freeze(o);
    this.height = o.height;
    this.width = o.width;
    this.lut = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) {
        let x = o.doRescale ? v * o.rescaleFactor : v;
        if (o.doNormalize) x = (x - (o.mean[c] as number)) / (o.std[c] as number);
        this.lut[c * 256 + v] = x;
      }
    }
  }

  async processRaw(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, source: string): Promise<Float32Array> {
    return this.processRawSync(pixels, width, height, channels, source);
  }

  /** Synchronous processRaw (no decoding involved), for tight loops over in-memory datasets. */
  processRawSync(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, source: string): Float32Array {
    if (![1, 3, 4].includes(channels)) throw new DataError(`image ${source}: channels must be 1, 3 or 4, got ${channels}`);
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw new DataError(`image ${source}: bad size ${width}x${height}`);
    }
    if (pixels.length !== width * height * channels) {
      throw new DataError(`image ${source}: ${pixels.length} bytes for ${width}x${height}x${channels} (expected ${width * height * channels})`);
    }
    if (channels === 3) return this.fromRgb8(pixels, width, height, source);
    const n = width * height;
    const rgb = new Uint8Array(n * 3);
    if (channels === 1) {
      for (let i = 0; i < n; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = pixels[i] as number;
    } else if (this.options.alpha === 'white') {
      for (let i = 0; i < n; i++) {
        const a = pixels[i * 4 + 3] as number;
        for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(((pixels[i * 4 + c] as number) * a + 255 * (255 - a)) / 255);
      }
    } else {
      for (let i = 0; i < n; i++) {
        rgb[i * 3] = pixels[i * 4] as number;
        rgb[i * 3 + 1] = pixels[i * 4 + 1] as number;
        rgb[i * 3 + 2] = pixels[i * 4 + 2] as number;
      }
    }
    return this.fromRgb8(rgb, width, height, source);
  }

  /**
   * Interleaved RGB uint8 → resized, normalised CHW float32, written into `out` at `offset` (a batch
   * buffer, so a batch needs no per-image arrays) or into a new array. Returns the array written to.
   */
  protected fromRgb8(rgb: Uint8Array, w: number, h: number, source: string, out?: Float32Array, offset = 0): Float32Array {
    const { height: H, width: W, doResize, shortestEdge, resample } = this.options;
    let px = rgb;
    let pw = w;
    let ph = h;
    if (doResize) {
      let rw = W;
      let rh = H;
      if (shortestEdge !== undefined) {
        // HF get_resize_output_image_size(default_to_square=False): long side = int(size * long / short).
        if (w <= h) {
          rw = shortestEdge;
          rh = Math.trunc((shortestEdge * h) / w);
        } else {
          rh = shortestEdge;
          rw = Math.trunc((shortestEdge * w) / h);
        }
        if (rw < W || rh < H) throw new DataError(`image ${source}: resized to ${rw}x${rh}, smaller than the ${W}x${H} crop`);
      }
      if (rw !== w || rh !== h) px = resizeRgb8Into(rgb, w, h, rw, rh, resample, this.scratch);
      pw = rw;
      ph = rh;
    } else if (w !== W || h !== H) {
      throw new DataError(`image ${source}: is ${w}x${h} but do_resize is off and the processor expects ${W}x${H}`);
    }
    // Centre crop (a no-op offset of 0 for a plain resize); HF: top = (h - ch) // 2.
    const top = (ph - H) >> 1;
    const left = (pw - W) >> 1;
    const plane = H * W;
    const target = out ?? new Float32Array(3 * plane);
    if (offset < 0 || offset + 3 * plane > target.length) {
      throw new ShapeError(`image ${source}: no room for 3x${H}x${W} values at offset ${offset} of ${target.length}`);
    }
    const lut = this.lut;
    for (let y = 0; y < H; y++) {
      let src = ((y + top) * pw + left) * 3;
      let dst = offset + y * W;
      for (let x = 0; x < W; x++, src += 3, dst++) {
        target[dst] = lut[px[src] as number] as number;
        target[plane + dst] = lut[256 + (px[src + 1] as number)] as number;
        target[2 * plane + dst] = lut[512 + (px[src + 2] as number)] as number;
      }
    }
    return target;
  }

  fingerprint(): string {
    return `image-processor:${JSON.stringify(this.options)}`;
  }
}

/**
 * Stack CHW float32 arrays into a float32 [B, 3, H, W] tensor. The caller owns (and disposes) it.
 */
export function toPixelTensor(images: readonly Float32Array[], height: number, width: number): tf.Tensor4D {
  if (images.length === 0) throw new ValueError('toPixelTensor: no images');
  const per = 3 * height * width;
  const buf = new Float32Array(images.length * per);
  images.forEach((img, i) => {
    if (img.length !== per) throw new ShapeError(`toPixelTensor: image ${i} has ${img.length} values, expected 3*${height}*${width} = ${per}`);
    buf.set(img, i * per);
  });
  return tf.tensor4d(buf, [images.length, 3, height, width], 'float32');
}

/**
 * The HF `preprocessor_config.json` (ViTImageProcessor keys) that `loadImageProcessor` reads back as these
 * options: resize + rescale + normalise.
 */
export function preprocessorConfigFor(options: Readonly<ImageProcessorOptions>): Record<string, unknown> {
  const height = options.height ?? 224;
  const width = options.width ?? 224;
  const resample = HF_RESAMPLE.indexOf(options.resample ?? 'bilinear');
  return {
    image_processor_type: 'ViTImageProcessor',
    do_resize: options.doResize ?? true,
    size: { height, width },
    resample: resample < 0 ? 2 : resample,
    do_rescale: options.doRescale ?? true,
    rescale_factor: options.rescaleFactor ?? 1 / 255,
    do_normalize: options.doNormalize ?? true,
    // Written out even when they are our defaults: HF reads a missing mean/std as its own (0.5) defaults.
    image_mean: [...(options.mean ?? CLIP_MEAN)],
    image_std: [...(options.std ?? CLIP_STD)],
  };
}
