/**
 * torchvision's functional colour ops on float CHW pixels in [0, 1] (`F.adjust_brightness`,
 * `adjust_contrast`, `adjust_saturation`, each `_blend(img, other, factor)` clamped to [0, 1]) and
 * `F.hflip`. Each works in place on a 3-channel image and returns it.
 */

/** torchvision `rgb_to_grayscale` weights (ITU-R 601-2 luma, as PIL's convert('L')). */
const LUMA = [0.2989, 0.587, 0.114] as const;

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** Per-pixel luma of a 3-channel CHW image. */
function grayscale(chw: Float32Array, plane: number): Float32Array {
  const g = new Float32Array(plane);
  for (let i = 0; i < plane; i++) {
    g[i] = LUMA[0] * (chw[i] as number) + LUMA[1] * (chw[plane + i] as number) + LUMA[2] * (chw[2 * plane + i] as number);
  }
  return g;
}

/** img · factor, clamped: 0 is black, 1 the original. */
export function adjustBrightness(chw: Float32Array, factor: number): Float32Array {
  for (let i = 0; i < chw.length; i++) chw[i] = clamp01(factor * (chw[i] as number));
  return chw;
}

/** Blend with the mean luma of the whole image: 0 is flat grey at that mean, 1 the original. */
export function adjustContrast(chw: Float32Array, factor: number): Float32Array {
  const plane = chw.length / 3;
  const g = grayscale(chw, plane);
  let sum = 0;
  for (let i = 0; i < plane; i++) sum += g[i] as number;
  const mean = sum / plane;
  const off = (1 - factor) * mean;
  for (let i = 0; i < chw.length; i++) chw[i] = clamp01(factor * (chw[i] as number) + off);
  return chw;
}

/** Blend with each pixel's luma: 0 is grayscale, 1 the original. */
export function adjustSaturation(chw: Float32Array, factor: number): Float32Array {
  const plane = chw.length / 3;
  const g = grayscale(chw, plane);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) chw[c * plane + i] = clamp01(factor * (chw[c * plane + i] as number) + (1 - factor) * (g[i] as number));
  }
  return chw;
}

/** Mirror left–right, in place. */
export function hflip(chw: Float32Array, channels: number, height: number, width: number): Float32Array {
  for (let r = 0; r < channels * height; r++) {
    const row = r * width;
    for (let a = row, b = row + width - 1; a < b; a++, b--) {
      const t = chw[a] as number;
      chw[a] = chw[b] as number;
      chw[b] = t;
    }
  }
  return chw;
}
