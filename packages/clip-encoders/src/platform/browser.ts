import { ConfigError, DataError, type ImageProcessor } from '@clip-ts/core';
import type { CheckpointFiles } from '../clip-checkpoint.js';
import { urlFiles } from '../clip-url-files.js';
import { ClipPixelProcessor } from '../image-processor.js';
import { decodeBrowserImage, type DecodedImage } from './browser-images.js';
import type { ClipPlatform } from './types.js';

/** Browsers (and any non-Node bundle): URLs and Hub ids over fetch; encoded bytes decoded by the browser. */

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/**
 * Browser decoding: encoded bytes (PNG, JPEG, WebP, … — what the browser reads) through createImageBitmap
 * and a canvas (./browser-images.ts), then the same pixel pipeline as Node. File paths do not exist here.
 */
class BrowserImageProcessor extends ClipPixelProcessor implements ImageProcessor {
  processFile(path: string): Promise<Float32Array> {
    return Promise.reject(new DataError(`image ${path}: file paths cannot be read in a browser; pass a File's bytes (new Uint8Array(await file.arrayBuffer())), decoded pixels ({ data, width, height }, e.g. ImageData) or a tensor`));
  }

  async processBuffer(bytes: Uint8Array, source: string): Promise<Float32Array> {
    // A copy, so the Blob never aliases a buffer the caller may reuse (and SharedArrayBuffers are refused by Blob).
    const blob = new Blob([bytes.slice()]);
    let img: DecodedImage;
    try {
      img = await decodeBrowserImage(blob);
    } catch (err) {
      throw new DataError(`cannot decode image ${source}: ${(err as Error).message.replace(/^cannot decode image [^:]*: /, '')}`, { cause: err });
    }
    return this.processRawSync(img.data, img.width, img.height, 3, source);
  }
}

export const platform: ClipPlatform = {
  open(source, options): Promise<CheckpointFiles> {
    const page = (globalThis as { location?: { href: string } }).location?.href;
    if (/^https?:\/\//i.test(source) || (page !== undefined && !HUB_ID.test(source))) {
      return Promise.resolve(urlFiles(new URL(source, page), options));
    }
    if (!HUB_ID.test(source)) return Promise.reject(new ConfigError(`'${source}' is neither a URL nor a Hub model id (org/name)`));
    // The Hub's resolve URLs allow cross-origin reads; no cache here beyond the browser's own.
    const endpoint = (options.endpoint ?? 'https://huggingface.co').replace(/\/$/, '');
    return Promise.resolve(urlFiles(`${endpoint}/${source}/resolve/${encodeURIComponent(options.revision ?? 'main')}/`, options));
  },
  imageProcessor: (options) => new BrowserImageProcessor(options),
};
