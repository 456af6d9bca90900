import * as tf from '@tensorflow/tfjs-core';
import type { TensorData } from './encoder.js';
import { CheckpointError } from './errors.js';

/**
 * Loading named weights into variables, shared by the projection heads and CLIPModel. A "layout" says how
 * the PyTorch tensor maps to the tfjs variable: `linear` weights are [out, in] on disk and [in, out] here.
 */
export type ParamLayout = 'same' | 'linear';

export interface ParamSpec {
  /** Key on disk (PyTorch name). */
  key: string;
  variable: tf.Variable;
  layout: ParamLayout;
}

/** The PyTorch-layout copy of a variable. Caller owns the result. */
export function toTorchLayout(p: ParamSpec): tf.Tensor {
  return p.layout === 'linear' ? tf.transpose(p.variable) : tf.clone(p.variable);
}

/**
 * Assign every spec from `weights`. All missing keys are reported together; a shape or dtype mismatch
 * names the key and both shapes. Nothing is assigned unless every key checks out.
 */
export function loadParams(specs: readonly ParamSpec[], weights: ReadonlyMap<string, TensorData>, source: string): void {
  const missing = specs.filter((p) => !weights.has(p.key)).map((p) => p.key);
  if (missing.length > 0) throw new CheckpointError(`${source}: missing weights: ${missing.join(', ')}`);
  for (const p of specs) {
    const w = weights.get(p.key) as TensorData;
    const want = p.layout === 'linear' ? [...p.variable.shape].reverse() : p.variable.shape;
    if (w.dtype !== 'float32') throw new CheckpointError(`${source}: '${p.key}' has dtype ${w.storedDtype}, expected a float type`);
    if (w.shape.length !== want.length || w.shape.some((d, i) => d !== want[i])) {
      throw new CheckpointError(`${source}: '${p.key}' has shape [${w.shape.join(', ')}], expected [${want.join(', ')}]`);
    }
  }
  for (const p of specs) {
    const w = weights.get(p.key) as TensorData;
    tf.tidy(() => {
      const t = tf.tensor(w.data, w.shape, 'float32');
      p.variable.assign(p.layout === 'linear' ? tf.transpose(t) : t);
    });
  }
}
