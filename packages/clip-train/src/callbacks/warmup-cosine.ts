import { z } from 'zod';
import { ConfigError } from '@clip-ts/core';
import { Callback } from './callback.js';
import type { Logs } from '../trainer/types.js';

export interface WarmupCosineOptions {
  /** Optimizer steps of linear warmup (0: none). */
  warmupSteps: number;
  /** Optimizer steps of the whole run (epochs × steps per epoch); the decay reaches minLr here. */
  totalSteps: number;
  /** Floor of the decay, an absolute LR for every group (default 0, as open_clip). */
  minLr?: number;
  /** Peak LR per group name; default: each group's LR when training begins (saved with the state). */
  baseLrs?: Record<string, number>;
}

const stateSchema = z.object({ baseLrs: z.record(z.string(), z.number()) });

/**
 * open_clip's default schedule (training/scheduler.py cosine_lr), per optimizer step k:
 * base·(k + 1)/warmupSteps while k < warmupSteps, then minLr + ½(1 + cos(π·e/es))·(base − minLr) with
 * e = k − warmupSteps, es = totalSteps − warmupSteps (held at minLr after totalSteps). The LR depends only
 * on k (the trainer's global step, logged before each batch) and the base LRs, which are the saved state,
 * so a run resumed mid-epoch continues exactly. It sets every LR before every step, so it cannot be
 * combined with ReduceLROnPlateau (whose reductions it would overwrite): the experiment config refuses both.
 */
export class WarmupCosine extends Callback {
  readonly name = 'warmupCosine';
  readonly warmupSteps: number;
  readonly totalSteps: number;
  readonly minLr: number;
  private baseLrs: Record<string, number> | undefined;

  constructor(options: WarmupCosineOptions) {
    super();
    const { warmupSteps, totalSteps, minLr = 0 } = options;
    if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 0) throw new ConfigError(`WarmupCosine: warmupSteps must be an integer ≥ 0, got ${warmupSteps}`);
    if (!Number.isSafeInteger(totalSteps) || totalSteps <= warmupSteps) {
      throw new ConfigError(`WarmupCosine: totalSteps (${totalSteps}) must be an integer above warmupSteps (${warmupSteps})`);
    }
    if (!(minLr >= 0)) throw new ConfigError(`WarmupCosine: minLr must be ≥ 0, got ${minLr}`);
    this.warmupSteps = warmupSteps;
    this.totalSteps = totalSteps;
    this.minLr = minLr;
    this.baseLrs = options.baseLrs ? { ...options.baseLrs } : undefined;
  }

  /** The LR of a group whose peak is `base` at optimizer step `step` (0-based). */
  lrAt(base: number, step: number): number {
    if (step < this.warmupSteps) return (base * (step + 1)) / this.warmupSteps;
    const es = this.totalSteps - this.warmupSteps;
    const e = Math.min(step - this.warmupSteps, es);
    return this.minLr + 0.5 * (1 + Math.cos((Math.PI * e) / es)) * (base - this.minLr);
  }

  override onTrainBegin(_logs: Logs): void {
    this.baseLrs ??= Object.fromEntries(this.trainer.optimizer.groups.map((g) => [g.name, g.lr]));
  }

  /** Sets the LR of the step this batch contributes to (idempotent across accumulated micro-batches). */
  override onBatchBegin(_batch: number, logs: Logs): void {
    const step = logs.step ?? this.trainer.globalStep;
    const bases = this.baseLrs ?? Object.fromEntries(this.trainer.optimizer.groups.map((g) => [g.name, g.lr]));
    this.baseLrs = bases;
    for (const group of this.trainer.optimizer.groups) {
      const base = bases[group.name];
      if (base === undefined) throw new ConfigError(`WarmupCosine: no base LR for parameter group '${group.name}'`);
      this.trainer.optimizer.setLr(group.name, this.lrAt(base, step));
    }
  }

  override getState(): z.infer<typeof stateSchema> | undefined {
    return this.baseLrs ? { baseLrs: { ...this.baseLrs } } : undefined;
  }

  override setState(state: unknown): void {
    this.baseLrs = stateSchema.parse(state).baseLrs;
  }
}
