import { Rng } from '@clip-ts/core';

/**
 * Seeded weight initialisers that mirror PyTorch's, drawn in JS from the core Rng so the same seed gives
 * bit-identical weights on every backend (tfjs' own random ops differ between backends and versions).
 */

/** Standard normal samples via Box–Muller (both outputs used). */
function fillNormal(rng: Rng, out: Float32Array, std: number, accept: (v: number) => boolean): Float32Array {
  let i = 0;
  while (i < out.length) {
    // 1 - next() lies in (0, 1], so the log is finite.
    const r = Math.sqrt(-2 * Math.log(1 - rng.next()));
    const t = 2 * Math.PI * rng.next();
    for (const z of [r * Math.cos(t), r * Math.sin(t)]) {
      const v = z * std;
      if (i < out.length && accept(v)) out[i++] = v;
    }
  }
  return out;
}

/** N(0, std²) like torch.nn.init.normal_ (DistilBERT's Linear and Embedding init). */
export function normalInit(rng: Rng, size: number, std: number): Float32Array {
  return fillNormal(rng, new Float32Array(size), std, () => true);
}

/**
 * torch.nn.init.trunc_normal_(mean=0, std, a=-2, b=2): N(0, std²) resampled outside the ABSOLUTE bounds
 * [a, b] (not ±2σ as tf.truncatedNormal does), which is what HF's ViT init uses.
 */
export function truncNormalInit(rng: Rng, size: number, std: number, a = -2, b = 2): Float32Array {
  return fillNormal(rng, new Float32Array(size), std, (v) => v >= a && v <= b);
}
