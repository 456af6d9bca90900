import { ConfigError, DataError, type ImageProcessor } from '@clip-ts/core';
import type { CheckpointFiles } from '../clip-checkpoint.js';
import { urlFiles } from '../clip-url-files.js';
import { ClipPixelProcessor } from '../image-processor.js';
import type { ClipPlatform } from './types.js';

/** Browsers (and any non-Node bundle): URLs and Hub ids over fetch; pixels and tensors only, for now. */

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/**
 * The seam for browser decoding (File/Blob/HTMLImageElement, encoded bytes through createImageBitmap): until
 * it exists, encoded images are refused with a message that says what works.
 */
class BrowserImageProcessor extends ClipPixelProcessor implements ImageProcessor {
  processFile(path: string): Promise<Float32Array> {
    return Promise.reject(new DataError(`image ${path}: file paths cannot be read in a browser; pass decoded pixels ({ data, width, height }, e.g. ImageData) or a tensor`));
  }

  processBuffer(_bytes: Uint8Array, source: string): Promise<Float32Array> {
    return Promise.reject(new DataError(`image ${source}: decoding encoded images in the browser is not supported yet; pass decoded pixels ({ data, width, height }, e.g. ImageData) or a tensor`));
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
