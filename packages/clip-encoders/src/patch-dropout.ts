import * as tf from '@tensorflow/tfjs-core';
import { ValueError, type Rng } from '@clip-ts/core';

/**
 * FLIP's patch dropout with open_clip's `PatchDropout` semantics: in training, each image keeps its
 * class token and a uniformly random subset of max(1, int(numPatches · (1 − prob))) patch tokens (after
 * the position embeddings were added, so the kept tokens still know where they came from); at eval, or
 * with prob 0, the tokens pass through unchanged. open_clip ranks `randn` draws with topk; a partial
 * Fisher–Yates shuffle of a seeded core Rng draws the same distribution (uniform subsets in random
 * order) reproducibly and without tensors, and shares the tower's dropout generator so checkpoints
 * resume it.
 */
export class PatchDropout {
  private p: number;

  constructor(
    private readonly rng: Rng,
    prob = 0,
  ) {
    this.p = PatchDropout.check(prob);
  }

  /** Fraction of patch tokens dropped in training, in [0, 1). */
  get prob(): number {
    return this.p;
  }

  set prob(value: number) {
    this.p = PatchDropout.check(value);
  }

  private static check(prob: number): number {
    if (!(prob >= 0 && prob < 1)) throw new ValueError(`patch dropout: prob must be in [0, 1), got ${prob}`);
    return prob;
  }

  /** Patch tokens each image keeps out of `numPatches` (open_clip: max(1, int(n · keep))). */
  keptPatches(numPatches: number): number {
    return Math.max(1, Math.trunc(numPatches * (1 - this.p)));
  }

  /**
   * h: [batch, 1 + numPatches, hidden] with the class token first. Returns h itself when nothing is
   * dropped, else a new [batch, 1 + kept, hidden] tensor the caller owns (h is not disposed).
   */
  apply(h: tf.Tensor3D, training: boolean): tf.Tensor3D {
    if (!training || this.p === 0) return h;
    const [B, T, D] = h.shape;
    const n = T - 1;
    const keep = this.keptPatches(n);
    const rows = new Int32Array(B * keep);
    const order = new Int32Array(n);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < n; i++) order[i] = i;
      for (let k = 0; k < keep; k++) {
        const j = k + this.rng.int(n - k);
        const t = order[k] as number;
        order[k] = order[j] as number;
        order[j] = t;
        rows[b * keep + k] = b * T + 1 + (order[k] as number);
      }
    }
    return tf.tidy(() => {
      const kept = tf.reshape(tf.gather(tf.reshape(h, [B * T, D]), tf.tensor1d(rows, 'int32')), [B, keep, D]);
      return tf.concat([tf.slice(h, [0, 0, 0], [B, 1, D]), kept], 1) as tf.Tensor3D;
    });
  }
}
