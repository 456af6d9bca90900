/**
 * Pillow's `Image.resize` resampling (libImaging/Resample.c), transcribed so that our preprocessing gives
 * the same pixels as the reference pipeline (torchvision `Resize` on PIL images, HF image processors).
 *
 * Why not sharp's resize: libvips aligns pixel corners when enlarging (a 4→8 ramp comes out
 * [0,50,100,…] where Pillow gives [0,25,75,…]), which shifts an upscaled CIFAR image by up to half a source
 * pixel (up to ~130/255 on edges); its reducing kernels also differ (lanczos3 by default). This
 * implementation matches Pillow bit for bit: a separable convolution whose filter support is widened by
 * the scale factor when shrinking (antialiasing), 22-bit fixed-point weights, a uint8-rounded horizontal
 * pass, then a vertical pass.
 */

import { simdResampler } from './resample-simd.js';

export type ResampleFilter = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

interface FilterDef {
  support: number;
  fn: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, FilterDef> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      return (Math.sin(px) / px) * (0.54 + 0.46 * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: {
    support: 3,
    fn: (x) => (x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0),
  },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Per-output-pixel source window and integer weights for one axis. */
export interface AxisCoeffs {
  /** First source index per output pixel. */
  start: Int32Array;
  /** Number of taps per output pixel. */
  count: Int32Array;
  /** Taps, `stride` per output pixel (fixed point, 2^22 = 1). */
  weights: Int32Array;
  stride: number;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc. */
function computeCoeffs(inSize: number, outSize: number, filter: ResampleFilter): AxisCoeffs {
  if (filter === 'nearest') {
    // Pillow's NEAREST resize is an affine transform sampling floor((x + 0.5) * scale).
    const scale = inSize / outSize;
    const start = new Int32Array(outSize);
    for (let x = 0; x < outSize; x++) start[x] = Math.min(inSize - 1, Math.floor((x + 0.5) * scale));
    return { start, count: new Int32Array(outSize).fill(1), weights: new Int32Array(outSize).fill(ONE), stride: 1 };
  }
  const { support: baseSupport, fn } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = baseSupport * filterscale;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
  const ss = 1 / filterscale;
  const k = new Float64Array(stride);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts truncate toward zero; both operands are ≥ -0.5 + 0.5 here, so trunc == floor except at <0.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? (k[x] as number) / ww : (k[x] as number);
      weights[xx * stride + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, stride };
}

const coeffCache = new Map<string, AxisCoeffs>();
const COEFF_CACHE_MAX = 64;

/** Cached: datasets have few distinct image sizes, so tables are reused across images. */
export function axisCoeffs(inSize: number, outSize: number, filter: ResampleFilter): AxisCoeffs {
  const key = `${inSize}:${outSize}:${filter}`;
  let c = coeffCache.get(key);
  if (!c) {
    if (coeffCache.size >= COEFF_CACHE_MAX) coeffCache.delete(coeffCache.keys().next().value as string);
    c = computeCoeffs(inSize, outSize, filter);
    coeffCache.set(key, c);
  }
  return c;
}

// Sums stay below 2^31 (255 · 2^22 · Σ|w| with Σ|w| < 1.2 for every filter), as in Pillow's int32 code,
// so `>> PRECISION_BITS` is Pillow's arithmetic shift (floor).
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Reusable intermediate buffers for resizeRgb8Into: a fresh 250 KB array per image costs more in page
 * faults than the horizontal pass itself, so a loop keeps one scratch (per thread) and reuses it.
 */
export class ResizeScratch {
  private tmp = new Uint8Array(0);
  private out = new Uint8Array(0);
  private acc = new Int32Array(0);

  /** A view of `n` bytes of the intermediate buffer (grown, never shrunk). */
  horizontal(n: number): Uint8Array {
    if (this.tmp.length < n) this.tmp = new Uint8Array(n);
    return this.tmp.subarray(0, n);
  }

  /** A view of `n` bytes of the result buffer. */
  result(n: number): Uint8Array {
    if (this.out.length < n) this.out = new Uint8Array(n);
    return this.out.subarray(0, n);
  }

  /** A row accumulator of `n` int32 values. */
  accumulator(n: number): Int32Array {
    if (this.acc.length < n) this.acc = new Int32Array(n);
    return this.acc.subarray(0, n);
  }
}

/**
 * Resize interleaved uint8 RGB (HWC) like Pillow. Returns a new Uint8Array (HWC, outW × outH × 3).
 * Passes whose size is unchanged are skipped, as Pillow does.
 */
export function resizeRgb8(
  src: Uint8Array,
  inW: number,
  inH: number,
  outW: number,
  outH: number,
  filter: ResampleFilter,
): Uint8Array {
  const res = resizeRgb8Into(src, inW, inH, outW, outH, filter, new ResizeScratch());
  return res === src ? src.slice() : res;
}

/**
 * resizeRgb8 with the intermediates in `scratch`: returns `src` itself when both sizes are unchanged,
 * else a view that the scratch (or this thread's SIMD resampler) owns, valid until the next resize on
 * this thread: consume or copy it first. Uses the WebAssembly SIMD passes when available (bit-identical).
 */
export function resizeRgb8Into(
  src: Uint8Array,
  inW: number,
  inH: number,
  outW: number,
  outH: number,
  filter: ResampleFilter,
  scratch: ResizeScratch,
): Uint8Array {
  if (outW === inW && outH === inH) return src;
  const simd = simdResampler();
  if (simd) {
    const h = outW !== inW ? axisCoeffs(inW, outW, filter) : null;
    const v = outH !== inH ? axisCoeffs(inH, outH, filter) : null;
    return simd.resize(src, inW, inH, outW, outH, h, v);
  }
  return resizeRgb8Scalar(src, inW, inH, outW, outH, filter, scratch);
}

/** The JS passes of resizeRgb8Into (where WebAssembly SIMD is missing; tests compare the two). */
export function resizeRgb8Scalar(
  src: Uint8Array,
  inW: number,
  inH: number,
  outW: number,
  outH: number,
  filter: ResampleFilter,
  scratch: ResizeScratch,
): Uint8Array {
  let cur = src;
  let curW = inW;
  if (outW !== inW) {
    const { start, count, weights, stride } = axisCoeffs(inW, outW, filter);
    // Written to the result buffer when no vertical pass follows, so the caller gets one buffer kind.
    const tmp = outH !== inH ? scratch.horizontal(inH * outW * 3) : scratch.result(inH * outW * 3);
    for (let y = 0; y < inH; y++) {
      const row = y * inW * 3;
      const orow = y * outW * 3;
      for (let x = 0; x < outW; x++) {
        const n = count[x] as number;
        let kb = x * stride;
        let p = row + (start[x] as number) * 3;
        let r = HALF;
        let g = HALF;
        let b = HALF;
        for (let t = 0; t < n; t++, kb++, p += 3) {
          const w = weights[kb] as number;
          // `| 0` keeps V8 on int32 arithmetic (sums fit in int32, see clip8), not doubles.
          r = (r + Math.imul(cur[p] as number, w)) | 0;
          g = (g + Math.imul(cur[p + 1] as number, w)) | 0;
          b = (b + Math.imul(cur[p + 2] as number, w)) | 0;
        }
        const o = orow + x * 3;
        tmp[o] = clip8(r);
        tmp[o + 1] = clip8(g);
        tmp[o + 2] = clip8(b);
      }
    }
    cur = tmp;
    curW = outW;
  }
  if (outH !== inH) {
    const { start, count, weights, stride } = axisCoeffs(inH, outH, filter);
    const rowLen = curW * 3;
    const out = scratch.result(outH * rowLen);
    // One sum per output value over the n source rows (each read sequentially): no accumulator row to
    // load and store per tap, which made this pass the slowest part of the pipeline.
    const rows = new Int32Array(stride);
    const ws = new Int32Array(stride);
    for (let y = 0; y < outH; y++) {
      const n = count[y] as number;
      for (let t = 0; t < n; t++) {
        rows[t] = ((start[y] as number) + t) * rowLen;
        ws[t] = weights[y * stride + t] as number;
      }
      const orow = y * rowLen;
      for (let i = 0; i < rowLen; i++) {
        let sum = HALF;
        for (let t = 0; t < n; t++) sum = (sum + Math.imul(cur[(rows[t] as number) + i] as number, ws[t] as number)) | 0;
        out[orow + i] = clip8(sum);
      }
    }
    cur = out;
  }
  return cur;
}
