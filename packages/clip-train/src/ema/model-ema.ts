import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ValueError, type NamedVariable } from '@clip-ts/core';

/**
 * Exponential moving average of weights, as timm's ModelEmaV2: after every optimizer step each shadow
 * becomes `decay · shadow + (1 − decay) · weight`, starting from a copy of the weights. `warmupSteps`
 * (timm ModelEmaV3's update_after_step) makes the first steps copy the weights instead, so the average does
 * not hold on to a random initialisation for ~1/(1 − decay) steps.
 */

export interface ModelEmaOptions {
  /** Weight of the old average per step, in (0, 1). */
  decay: number;
  /** Optimizer steps 1..warmupSteps copy the weights (decay 0). Default 0. */
  warmupSteps?: number;
}

export class ModelEma {
  readonly decay: number;
  readonly warmupSteps: number;
  private readonly sources: NamedVariable[];
  /** Owned: one non-trainable copy per averaged weight, in `sources` order. */
  private readonly shadows: tf.Variable[];

  /** Averages `variables` (borrowed: they stay the model's); the shadows start as copies of them. */
  constructor(variables: readonly NamedVariable[], options: ModelEmaOptions) {
    if (!(options.decay > 0 && options.decay < 1)) throw new ValueError(`ema decay must be in (0, 1), got ${options.decay}`);
    this.decay = options.decay;
    this.warmupSteps = options.warmupSteps ?? 0;
    this.sources = [...variables];
    this.shadows = this.sources.map((nv) => tf.variable(nv.variable, false));
  }

  /** The decay used for optimizer step `step` (1-based). */
  decayAt(step: number): number {
    return step <= this.warmupSteps ? 0 : this.decay;
  }

  /** Fold the current weights in, after optimizer step `step` (1-based). */
  update(step: number): void {
    const d = this.decayAt(step);
    tf.tidy(() => {
      this.sources.forEach((nv, i) => {
        const shadow = this.shadows[i] as tf.Variable;
        shadow.assign(d === 0 ? nv.variable : tf.add(tf.mul(shadow, d), tf.mul(nv.variable, 1 - d)));
      });
    });
  }

  /** Checkpoint names of the averaged weights. */
  get names(): string[] {
    return this.sources.map((nv) => nv.name);
  }

  /** Copies of the shadows by checkpoint name; the caller owns the tensors. */
  snapshot(): Map<string, tf.Tensor> {
    return new Map(this.sources.map((nv, i) => [nv.name, tf.clone(this.shadows[i] as tf.Variable)] as const));
  }

  /**
   * Run `fn` with the averages in the model's weights (to evaluate or save them); the raw weights are put
   * back exactly afterwards, also when `fn` throws.
   */
  async withAveragedWeights<T>(fn: () => Promise<T>): Promise<T> {
    const raw = this.sources.map((nv) => tf.clone(nv.variable));
    try {
      this.sources.forEach((nv, i) => nv.variable.assign(this.shadows[i] as tf.Variable));
      return await fn();
    } finally {
      this.sources.forEach((nv, i) => nv.variable.assign(raw[i] as tf.Tensor));
      tf.dispose(raw);
    }
  }

  /** Set the shadows from a checkpoint's weights (a resumed run); `source` names it in errors. */
  restore(weights: readonly NamedVariable[], source: string): void {
    const byName = new Map(weights.map((nv) => [nv.name, nv.variable] as const));
    this.sources.forEach((nv, i) => {
      const w = byName.get(nv.name);
      if (!w) throw new CheckpointError(`${source}: the EMA weights lack ${nv.name}`);
      if (w.shape.join() !== nv.variable.shape.join()) {
        throw new CheckpointError(`${source}: EMA weight ${nv.name} has shape [${w.shape.join(', ')}], the model [${nv.variable.shape.join(', ')}]`);
      }
      (this.shadows[i] as tf.Variable).assign(w);
    });
  }

  dispose(): void {
    tf.dispose(this.shadows);
  }
}
