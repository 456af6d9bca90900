/**
 * The fast JPEG decode (Node): libjpeg-turbo through `@julusian/jpeg-turbo` (prebuilt binaries inside the
 * npm package, an optional dependency), decoding into one reused buffer.
 *
 * Why: sharp's decode costs ~3.5–7 ms of CPU per 500×375 photo here (libvips pipeline set-up plus fresh
 * allocations that page-fault), this one ~1 ms. Why not for everything: the binding decodes with
 * libjpeg-turbo's fast integer IDCT (TJFLAG_FASTDCT, fixed in the binding), so pixels differ from Pillow's
 * (accurate IDCT) by a few grey levels — the processor states and tests the bound. Files it is not sure to
 * treat as sharp does (CMYK, embedded ICC profiles, lossless/12-bit JPEG, anything not JPEG) or cannot
 * decode (truncated, corrupt) go to sharp, so their pixels and their errors stay what they were.
 */
import { createRequire } from 'node:module';
import type { DecodedRgb } from '@clip-ts/core';

interface TurboBinding {
  FORMAT_RGB: number;
  decompressSync(image: Buffer, out: Buffer, options: { format: number }): { width: number; height: number; size: number };
}

let binding: TurboBinding | null | undefined;

/** The binding, or null when the optional dependency is missing on this platform (then sharp decodes). */
function loadBinding(): TurboBinding | null {
  if (binding === undefined) {
    try {
      binding = createRequire(import.meta.url)('@julusian/jpeg-turbo') as TurboBinding;
    } catch {
      binding = null;
    }
  }
  return binding;
}

/** Whether libjpeg-turbo is available in this process. */
export function hasTurboJpeg(): boolean {
  return loadBinding() !== null;
}

/**
 * Size of a JPEG that the fast path may decode: baseline/extended/progressive Huffman (SOF0–2), 8-bit,
 * 1 or 3 components (gray or YCbCr/RGB), no ICC profile (sharp converts those to sRGB). Else null.
 * Reads markers up to the first scan only.
 */
export function plainJpegSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let p = 2;
  let size: { width: number; height: number } | null = null;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return null;
    const marker = bytes[p + 1] as number;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (marker === 0xda) return size; // start of scan: headers done
    const len = ((bytes[p + 2] as number) << 8) | (bytes[p + 3] as number);
    if (len < 2 || p + 2 + len > bytes.length) return null;
    const seg = p + 4;
    if (marker === 0xe2 && len >= 14 && String.fromCharCode(...bytes.subarray(seg, seg + 11)) === 'ICC_PROFILE') return null;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (marker > 0xc2 || len < 8) return null; // lossless, hierarchical, arithmetic: leave to sharp
      const precision = bytes[seg] as number;
      const height = ((bytes[seg + 1] as number) << 8) | (bytes[seg + 2] as number);
      const width = ((bytes[seg + 3] as number) << 8) | (bytes[seg + 4] as number);
      const components = bytes[seg + 5] as number;
      if (precision !== 8 || width === 0 || height === 0 || (components !== 1 && components !== 3)) return null;
      size = { width, height };
    }
    p += 2 + len;
  }
  return null;
}

/**
 * Decodes plain JPEGs (see plainJpegSize) to RGB8 into a buffer it keeps and grows. One per thread: the
 * result is a view of that buffer, valid until the next decode() — consume or copy it first.
 */
export class TurboJpegDecoder {
  private buf = Buffer.alloc(0);

  /** RGB8 of `bytes` (a view this decoder owns), or null: not a plain JPEG, no binding, or a decode error. */
  decode(bytes: Uint8Array): DecodedRgb | null {
    const turbo = loadBinding();
    if (!turbo) return null;
    const size = plainJpegSize(bytes);
    if (!size) return null;
    const n = size.width * size.height * 3;
    if (this.buf.length < n) this.buf = Buffer.allocUnsafeSlow(n);
    const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    try {
      const r = turbo.decompressSync(input, this.buf, { format: turbo.FORMAT_RGB });
      if (r.width !== size.width || r.height !== size.height) return null;
    } catch {
      // Truncated or corrupt: sharp decides (it rejects with a clear message, or decodes what it accepts).
      return null;
    }
    return { data: new Uint8Array(this.buf.buffer, this.buf.byteOffset, n), width: size.width, height: size.height };
  }
}
