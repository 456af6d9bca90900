/**
 * Browser image decoding: File / Blob / HTMLImageElement / ImageBitmap / ImageData / canvas → interleaved
 * RGB bytes, the input ClipPixelProcessor takes (`processRawSync(data, width, height, 3, source)`), so
 * pixels then go through exactly the resize + crop + normalise code Node uses after sharp.
 *
 * Why it is done this way:
 * - Blobs are decoded with `createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' })`:
 *   without those options Chromium converts embedded colour profiles to the display space and
 *   premultiplies alpha, and the bytes would no longer be the stored ones that sharp (and PIL) return.
 * - Pixels are read back through a 2D canvas (`getImageData`). For opaque images that is exact: a PNG
 *   decodes to the same bytes as in Node. Canvases store premultiplied alpha, so translucent pixels lose
 *   precision (colours of pixels with alpha < 255 may be off by a few levels); alpha itself is dropped like
 *   PIL's `convert('RGB')` does. JPEG decoders differ between libjpeg-turbo builds (sharp vs Chromium):
 *   expect ±1–2 levels on some pixels.
 * - No EXIF rotation is applied to Blobs where the browser lets us skip it (`imageOrientation: 'none'`),
 *   matching Node's pipeline, which does not rotate either.
 *
 * The repo compiles against Node's lib (no DOM types), so the few DOM shapes used are typed here by hand.
 */
import { DataError } from '@clip-ts/core';

/** What `getImageData` returns (and what a user may pass directly). */
export interface ImageDataLike {
  readonly data: Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
}

/** Anything a 2D canvas can draw: ImageBitmap, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, VideoFrame… */
export interface DrawableImage {
  readonly width: number;
  readonly height: number;
  /** HTMLImageElement: the intrinsic size (width/height are the laid-out size). */
  readonly naturalWidth?: number;
  readonly naturalHeight?: number;
  /** HTMLImageElement: false while it is still loading or when it failed. */
  readonly complete?: boolean;
  /** HTMLImageElement: for error messages. */
  readonly currentSrc?: string;
}

/** File or Blob holding encoded bytes (PNG, JPEG, WebP, GIF, AVIF, BMP — whatever the browser decodes). */
export interface BlobLike {
  readonly size: number;
  readonly type: string;
  /** File only. */
  readonly name?: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export type BrowserImageInput = BlobLike | ImageDataLike | DrawableImage;

/** Decoded pixels: interleaved RGB, row-major, `data.length === width * height * 3`. Holds no tensors. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

interface Context2D {
  drawImage(image: unknown, dx: number, dy: number): void;
  getImageData(sx: number, sy: number, sw: number, sh: number): ImageDataLike;
}
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d', options?: Record<string, unknown>): Context2D | null;
}
interface BrowserGlobals {
  createImageBitmap?: (image: unknown, options?: Record<string, unknown>) => Promise<DrawableImage & { close(): void }>;
  OffscreenCanvas?: new (width: number, height: number) => CanvasLike;
  document?: { createElement(tag: 'canvas'): CanvasLike };
}

const g = globalThis as unknown as BrowserGlobals;

const isBlob = (x: BrowserImageInput): x is BlobLike =>
  typeof (x as BlobLike).arrayBuffer === 'function' && typeof (x as BlobLike).size === 'number';
const isImageData = (x: BrowserImageInput): x is ImageDataLike => (x as ImageDataLike).data instanceof Uint8ClampedArray;

/** A name for error messages: the file name, the image URL, or the kind of object. */
export function describeBrowserImage(input: BrowserImageInput): string {
  if (isBlob(input)) return input.name ? `'${input.name}'` : `Blob(${input.type || 'unknown type'}, ${input.size} bytes)`;
  const src = (input as DrawableImage).currentSrc;
  if (src) return `'${src}'`;
  return (input as object).constructor?.name ?? 'image';
}

/** RGBA (ImageData layout) → RGB; alpha dropped, colour values kept as stored (PIL `convert('RGB')`). */
export function rgbaToRgb(image: ImageDataLike): DecodedImage {
  const { width, height } = image;
  const n = width * height;
  if (image.data.length !== n * 4) throw new DataError(`image data: ${image.data.length} bytes for ${width}x${height} RGBA`);
  const rgb = new Uint8Array(n * 3);
  const src = image.data;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    rgb[j] = src[i * 4] as number;
    rgb[j + 1] = src[i * 4 + 1] as number;
    rgb[j + 2] = src[i * 4 + 2] as number;
  }
  return { data: rgb, width, height, channels: 3 };
}

function canvas(width: number, height: number): CanvasLike {
  if (g.OffscreenCanvas) return new g.OffscreenCanvas(width, height);
  if (g.document) {
    const c = g.document.createElement('canvas');
    c.width = width;
    c.height = height;
    return c;
  }
  throw new DataError('decodeBrowserImage: no OffscreenCanvas or document here (call it in a browser page or worker)');
}

function readPixels(image: DrawableImage, width: number, height: number, what: string): DecodedImage {
  if (width <= 0 || height <= 0) throw new DataError(`cannot decode image ${what}: it is ${width}x${height}`);
  const ctx = canvas(width, height).getContext('2d', { willReadFrequently: true, colorSpace: 'srgb', alpha: true });
  if (!ctx) throw new DataError(`cannot decode image ${what}: no 2D canvas context`);
  ctx.drawImage(image, 0, 0);
  return rgbaToRgb(ctx.getImageData(0, 0, width, height));
}

/**
 * Decode a browser image to RGB bytes. Unreadable input (not an image, truncated, a broken or unloaded
 * `<img>`) → DataError naming the file / URL. The result is a new array owned by the caller.
 */
export async function decodeBrowserImage(input: BrowserImageInput): Promise<DecodedImage> {
  const what = describeBrowserImage(input);
  if (isImageData(input)) return rgbaToRgb(input);
  if (isBlob(input)) {
    if (!g.createImageBitmap) throw new DataError(`cannot decode image ${what}: this environment has no createImageBitmap`);
    let bitmap: DrawableImage & { close(): void };
    try {
      bitmap = await g.createImageBitmap(input, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'none' });
    } catch (err) {
      throw new DataError(`cannot decode image ${what}: ${(err as Error).message || 'not an image the browser can read'}`, { cause: err });
    }
    try {
      return readPixels(bitmap, bitmap.width, bitmap.height, what);
    } finally {
      bitmap.close();
    }
  }
  const img = input as DrawableImage;
  if (img.complete === false) throw new DataError(`cannot decode image ${what}: the <img> has not finished loading (await img.decode() first)`);
  const width = img.naturalWidth ?? img.width;
  const height = img.naturalHeight ?? img.height;
  return readPixels(img, width, height, what);
}
