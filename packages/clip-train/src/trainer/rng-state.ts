import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@clip-ts/core';
import { TrainingError } from './errors.js';

/**
 * Dropout masks come from core `Rng` generators held inside the towers and heads (one per module, seeded
 * at construction). For a resumed run to draw the same masks as an uninterrupted one, their states must be
 * saved with the checkpoint. They are found by walking the model's object graph (own properties, arrays,
 * maps; tensors and typed arrays skipped) in property order, which is the same for two models built from
 * the same config — so no encoder has to expose an extra API for it.
 */
export function findRngs(root: object): Rng[] {
  const out: Rng[] = [];
  const seen = new Set<object>();
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Rng) {
      out.push(v);
      return;
    }
    if (v instanceof tf.Tensor || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return;
    const values = v instanceof Map ? [...v.values()] : Array.isArray(v) ? v : Object.values(v);
    for (const x of values) walk(x);
  };
  walk(root);
  return out;
}

/** The states of every generator in `root` (see findRngs). */
export function rngStates(root: object): number[] {
  return findRngs(root).map((r) => r.state);
}

/** Put saved states back; a different number of generators means the checkpoint is of another model. */
export function restoreRngStates(root: object, states: readonly number[], source: string): void {
  const rngs = findRngs(root);
  if (rngs.length !== states.length) {
    throw new TrainingError(`${source}: the checkpoint holds ${states.length} RNG states but this model has ${rngs.length} generators (a different model?)`);
  }
  rngs.forEach((r, i) => {
    r.state = states[i] as number;
  });
}
