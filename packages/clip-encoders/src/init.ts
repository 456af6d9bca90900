import { Rng } from '@clip-ts/core';

/**
 * Seeded weight initialisers that mirror PyTorch's, drawn in JS from the core Rng so the same seed gives
 * bit-identical weights on every backend (tfjs' own random ops differ between backends and versions).
 * Written as one flat loop (no per-sample allocation or callback): ViT-base draws 86M samples.
 */

/**
 * Fill `out` with N(0, std²) samples (Box–Muller, both outputs used), resampling any outside
 * [lo, hi] (absolute bounds).
 */
function fillNormal(rng: Rng, out: Float32Array, std: number, lo: number, hi: number): Float32Array {
  let i = 0;
  const n = out.length;
  while (i < n) {
    // 1 - next() lies in (0, 1], so the log is finite.
    const r = std * Math.sqrt(-2 * Math.log(1 - rng.next()));
    const t = 2 * Math.PI * rng.next();
    const a = r * Math.cos(t);
    if (a >= lo && a <= hi) out[i++] = a;
    const b = r * Math.sin(t);
    if (i < n && b >= lo && b <= hi) out[i++] = b;
  }
  return out;
}

/** N(0, std²) like torch.nn.init.normal_ (DistilBERT's Linear and Embedding init). */
export function normalInit(rng: Rng, size: number, std: number): Float32Array {
  return fillNormal(rng, new Float32Array(size), std, -Infinity, Infinity);
}

/**
 * torch.nn.init.trunc_normal_(mean=0, std, a=-2, b=2): N(0, std²) resampled outside the ABSOLUTE bounds
 * [a, b] (not ±2σ as tf.truncatedNormal does), which is what HF's ViT init uses.
 */
export function truncNormalInit(rng: Rng, size: number, std: number, a = -2, b = 2): Float32Array {
  return fillNormal(rng, new Float32Array(size), std, a, b);
}
