/**
 * torchvision's `RandomResizedCrop.get_params`, transcribed so that the same random draws give the same
 * box: 10 attempts at a (scale, log-uniform ratio) box that fits, then a centre crop at the nearest
 * allowed aspect ratio. Python's `round` (half to even) and torch's float32 `exp` are kept because they
 * decide pixel boundaries.
 */

/** A crop box in source pixels (torchvision's i, j, h, w). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** The random numbers get_params draws, in its order; the loader backs them with a seeded Rng. */
export interface CropDraws {
  /** Uniform in [lo, hi) (torch `uniform_`). */
  uniform(lo: number, hi: number): number;
  /** Uniform integer in [lo, hi) (torch `randint`). */
  int(lo: number, hi: number): number;
}

/** Python 3 `round(x)`: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The crop box of a `width`×`height` image (see the module comment). `scale` and `ratio` are [min, max]. */
export function randomResizedCropBox(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  draws: CropDraws,
): CropBox {
  const area = height * width;
  // torch.log(torch.tensor(ratio)) is float32.
  const logLo = Math.fround(Math.log(ratio[0]));
  const logHi = Math.fround(Math.log(ratio[1]));
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * draws.uniform(scale[0], scale[1]);
    const aspect = Math.fround(Math.exp(draws.uniform(logLo, logHi)));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = draws.int(0, height - h + 1);
      const left = draws.int(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) {
    h = roundHalfEven(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    w = roundHalfEven(h * Math.max(...ratio));
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}
