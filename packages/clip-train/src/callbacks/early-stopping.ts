import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Callback } from './callback.js';
import type { Logs } from '../trainer/types.js';

export interface EarlyStoppingOptions {
  monitor?: string;
  mode?: 'min' | 'max';
  /** Epochs without improvement before stopping (default 5). */
  patience?: number;
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /** Put the best epoch's weights back when training ends (default true). Keeps one copy in memory. */
  restoreBestWeights?: boolean;
}

const stateSchema = z.object({ best: z.number().nullable(), bestEpoch: z.number(), wait: z.number(), stoppedEpoch: z.number().nullable() });

/**
 * Stop when the monitored value has not improved for `patience` epochs (the reference's counter: reset on
 * improvement, stop when it reaches patience). With restoreBestWeights the best epoch's weights are
 * snapshotted in memory and assigned back at the end of training.
 */
export class EarlyStopping extends Callback {
  readonly name = 'earlyStopping';
  readonly monitor: string;
  readonly mode: 'min' | 'max';
  readonly patience: number;
  readonly minDelta: number;
  readonly restoreBestWeights: boolean;
  private best: number;
  private bestEpoch = -1;
  private wait = 0;
  /** Epoch at which this callback stopped training, or null. */
  stoppedEpoch: number | null = null;
  private snapshot: Map<string, tf.Tensor> | null = null;

  constructor(options: EarlyStoppingOptions = {}) {
    super();
    this.monitor = options.monitor ?? 'val_loss';
    this.mode = options.mode ?? 'min';
    this.patience = options.patience ?? 5;
    this.minDelta = options.minDelta ?? 0;
    this.restoreBestWeights = options.restoreBestWeights ?? true;
    this.best = this.mode === 'min' ? Infinity : -Infinity;
  }

  get bestValue(): number {
    return this.best;
  }

  override onEpochEnd(epoch: number, logs: Logs): void {
    const value = logs[this.monitor];
    if (value === undefined) return;
    const improved = this.mode === 'min' ? value < this.best - this.minDelta : value > this.best + this.minDelta;
    if (improved) {
      this.best = value;
      this.bestEpoch = epoch;
      this.wait = 0;
      if (this.restoreBestWeights) this.takeSnapshot();
      return;
    }
    this.wait += 1;
    if (this.wait >= this.patience) {
      this.stoppedEpoch = epoch;
      this.trainer.stopTraining = true;
    }
  }

  override onTrainEnd(): void {
    if (this.snapshot) {
      for (const nv of this.trainer.model.namedVariables()) {
        const saved = this.snapshot.get(nv.name);
        if (saved) nv.variable.assign(saved);
      }
    }
    this.clearSnapshot();
  }

  override getState(): z.infer<typeof stateSchema> {
    return { best: Number.isFinite(this.best) ? this.best : null, bestEpoch: this.bestEpoch, wait: this.wait, stoppedEpoch: this.stoppedEpoch };
  }

  /** Restores the counters; the weight snapshot is not part of the state (a resumed run reloads best/). */
  override setState(state: unknown): void {
    const s = stateSchema.parse(state);
    this.best = s.best ?? (this.mode === 'min' ? Infinity : -Infinity);
    this.bestEpoch = s.bestEpoch;
    this.wait = s.wait;
    this.stoppedEpoch = s.stoppedEpoch;
  }

  get bestEpochIndex(): number {
    return this.bestEpoch;
  }

  private takeSnapshot(): void {
    this.clearSnapshot();
    // Buffers (BatchNorm running statistics) change in training too and belong to the best weights.
    this.snapshot = new Map(this.trainer.model.namedVariables().filter((nv) => nv.variable.trainable || nv.buffer).map((nv) => [nv.name, tf.clone(nv.variable)]));
  }

  private clearSnapshot(): void {
    if (this.snapshot) tf.dispose([...this.snapshot.values()]);
    this.snapshot = null;
  }
}
