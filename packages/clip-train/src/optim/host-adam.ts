import * as tf from '@tensorflow/tfjs-core';
import { adamUpdateArrays } from '@clip-ts/core';
import { AdamOptimizer, type AdamState } from './adam.js';
import type { GroupState } from './optimizer.js';

/**
 * AdamOptimizer with its moments in JS memory (Float32Arrays) instead of backend tensors: on wasm the
 * heap (4 GB) then holds only the weights and gradients, which is what lets ViT-base + DistilBERT-base
 * train there (their moments alone are 1.2 GB). Each parameter is updated on the host in turn: its
 * weight and gradient are read back, updated, and the new weight written (one parameter's copy at a time).
 * Every operation is rounded to float32 in the order AdamOptimizer's tensor ops run, so the numbers are
 * the same as AdamOptimizer's on the cpu backend (and within float rounding on others). Slower per step
 * by one read-back of every weight and gradient; getState/setState stay compatible (same tensor names).
 */
export class HostAdamOptimizer extends AdamOptimizer {
  /** param name → its moments, created on the parameter's first update. */
  private readonly moments = new Map<string, { m: Float32Array; v: Float32Array }>();

  override applyGradients(grads: ReadonlyMap<tf.Variable, tf.Tensor>): void {
    this.stepCount += 1;
    for (const group of this.groupList) {
      for (const p of group.params) {
        const g = grads.get(p.variable);
        if (!g) continue;
        // Read-only views or copies (on cpu dataSync returns the storage itself); the new weights go to `out`.
        const w = p.variable.dataSync() as Float32Array;
        let mom = this.moments.get(p.name);
        if (!mom) {
          mom = { m: new Float32Array(w.length), v: new Float32Array(w.length) };
          this.moments.set(p.name, mom);
        }
        const out = new Float32Array(w.length);
        adamUpdateArrays(w, g.dataSync() as Float32Array, mom.m, mom.v, out, this.coefficients(group, p.decay));
        const next = tf.tensor(out, p.variable.shape, 'float32');
        p.variable.assign(next);
        next.dispose();
      }
    }
  }

  /** As AdamOptimizer's: `exp_avg.<name>` / `exp_avg_sq.<name>` tensors, which the caller owns. */
  override getState(): AdamState {
    const base = super.getState();
    const tensors = new Map<string, tf.Tensor>();
    for (const group of this.groupList) {
      for (const p of group.params) {
        const mom = this.moments.get(p.name);
        if (!mom) continue;
        tensors.set(`exp_avg.${p.name}`, tf.tensor(mom.m, p.variable.shape, 'float32'));
        tensors.set(`exp_avg_sq.${p.name}`, tf.tensor(mom.v, p.variable.shape, 'float32'));
      }
    }
    return { ...base, tensors };
  }

  override setState(state: { step: number; groups: readonly GroupState[]; tensors: ReadonlyMap<string, tf.Tensor> }, source = 'optimizer state'): void {
    // The base class validates names and shapes and sets the step and groups; the moments then move to the host.
    super.setState(state, source);
    super.dispose();
    this.moments.clear();
    for (const group of this.groupList) {
      for (const p of group.params) {
        const m = state.tensors.get(`exp_avg.${p.name}`);
        const v = state.tensors.get(`exp_avg_sq.${p.name}`);
        if (m && v) this.moments.set(p.name, { m: Float32Array.from(m.dataSync()), v: Float32Array.from(v.dataSync()) });
      }
    }
  }

  override dispose(): void {
    super.dispose();
    this.moments.clear();
  }
}
