/**
 * torchvision `F.resized_crop(img, top, left, h, w, size, BILINEAR, antialias=True)` on float32 CHW
 * pixels: crop, then PyTorch's separable antialiased bilinear interpolation (`_upsample_bilinear2d_aa`,
 * align_corners=False). When shrinking, the triangle filter is stretched by the scale so every source
 * pixel contributes (Pillow's algorithm, which the image processor uses on uint8 pixels); when enlarging,
 * it is plain bilinear. Plain JS on typed arrays: identical on every tfjs backend.
 */
import type { CropBox } from './crop-box.js';

interface Taps {
  /** First source index of each output index. */
  start: Int32Array;
  /** Number of taps of each output index. */
  count: Int32Array;
  /** Normalised weights, `maxTaps` per output index. */
  weights: Float64Array;
  maxTaps: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = scale >= 1 ? scale : 1;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * maxTaps);
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    // PyTorch truncates with an int64 cast; the operands are ≥ -0.5 here, where trunc and max(·, 0) agree with C.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    for (let j = 0; j < n; j++) {
      const w = Math.max(0, 1 - Math.abs((j + lo - center + 0.5) * invScale));
      weights[i * maxTaps + j] = w;
      total += w;
    }
    if (total !== 0) for (let j = 0; j < n; j++) weights[i * maxTaps + j] = (weights[i * maxTaps + j] as number) / total;
    start[i] = lo;
    count[i] = n;
  }
  return { start, count, weights, maxTaps };
}

/**
 * Crop `box` out of a float CHW image of `height`×`width` and resize it to `outHeight`×`outWidth`.
 * Returns a new float32 CHW array (the caller owns it; no tensors involved).
 */
export function resizedCrop(
  chw: Float32Array,
  channels: number,
  height: number,
  width: number,
  box: CropBox,
  outHeight: number,
  outWidth: number,
): Float32Array {
  const tx = taps(box.width, outWidth);
  const ty = taps(box.height, outHeight);
  // Horizontal pass over the crop's rows, then vertical: the order PyTorch's separable kernel uses.
  const mid = new Float64Array(channels * box.height * outWidth);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < box.height; y++) {
      const row = c * height * width + (box.top + y) * width + box.left;
      const dst = (c * box.height + y) * outWidth;
      for (let x = 0; x < outWidth; x++) {
        let s = 0;
        const base = x * tx.maxTaps;
        const st = tx.start[x] as number;
        for (let k = 0, n = tx.count[x] as number; k < n; k++) s += (tx.weights[base + k] as number) * (chw[row + st + k] as number);
        mid[dst + x] = s;
      }
    }
  }
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < outHeight; y++) {
      const base = y * ty.maxTaps;
      const st = ty.start[y] as number;
      const n = ty.count[y] as number;
      const dst = (c * outHeight + y) * outWidth;
      for (let x = 0; x < outWidth; x++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += (ty.weights[base + k] as number) * (mid[(c * box.height + st + k) * outWidth + x] as number);
        out[dst + x] = s;
      }
    }
  }
  return out;
}
