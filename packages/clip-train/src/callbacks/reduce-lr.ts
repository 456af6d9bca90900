import { z } from 'zod';
import { Callback } from './callback.js';
import type { Logs } from '../trainer/types.js';

export interface ReduceLROnPlateauOptions {
  /** Logged value to watch (default `val_loss`). */
  monitor?: string;
  mode?: 'min' | 'max';
  /** New LR = LR × factor (default 0.5, must be < 1). */
  factor?: number;
  /** Epochs without improvement tolerated before reducing (default 2). */
  patience?: number;
  /** Smallest change counted as an improvement (default 1e-4). */
  threshold?: number;
  thresholdMode?: 'rel' | 'abs';
  /** Epochs to wait after a reduction before counting bad epochs again (default 0). */
  cooldown?: number;
  /** Lower bound per group: one number for all groups, or a value per group name. */
  minLr?: number | Record<string, number>;
  /** Reductions smaller than this are ignored (default 1e-8). */
  eps?: number;
}

const stateSchema = z.object({ best: z.number().nullable(), numBadEpochs: z.number(), cooldownCounter: z.number() });

/**
 * torch.optim.lr_scheduler.ReduceLROnPlateau, step for step: called with the monitored value at each epoch
 * end, it scales every parameter group's LR by `factor` once the value has not improved for more than
 * `patience` epochs, then waits `cooldown` epochs. Improvement is `a < best·(1 − threshold)` in min/rel
 * mode (and the analogous tests for abs / max).
 */
export class ReduceLROnPlateau extends Callback {
  readonly name = 'reduceLROnPlateau';
  readonly monitor: string;
  readonly mode: 'min' | 'max';
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly thresholdMode: 'rel' | 'abs';
  readonly cooldown: number;
  readonly minLr: number | Record<string, number>;
  readonly eps: number;
  private best: number;
  private numBadEpochs = 0;
  private cooldownCounter = 0;

  constructor(options: ReduceLROnPlateauOptions = {}) {
    super();
    this.monitor = options.monitor ?? 'val_loss';
    this.mode = options.mode ?? 'min';
    this.factor = options.factor ?? 0.5;
    if (!(this.factor < 1) || !(this.factor >= 0)) throw new RangeError('ReduceLROnPlateau: factor must be in [0, 1)');
    this.patience = options.patience ?? 2;
    this.threshold = options.threshold ?? 1e-4;
    this.thresholdMode = options.thresholdMode ?? 'rel';
    this.cooldown = options.cooldown ?? 0;
    this.minLr = options.minLr ?? 0;
    this.eps = options.eps ?? 1e-8;
    this.best = this.worst();
  }

  /** PyTorch's `step(metrics)`; returns true when the LRs were reduced. */
  step(current: number): boolean {
    if (this.isBetter(current)) {
      this.best = current;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs += 1;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter -= 1;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.patience) {
      const reduced = this.reduce();
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
      return reduced;
    }
    return false;
  }

  override onEpochEnd(_epoch: number, logs: Logs): void {
    const value = logs[this.monitor];
    if (value === undefined) return; // no validation this epoch: nothing to judge
    this.step(value);
  }

  override getState(): z.infer<typeof stateSchema> {
    return { best: Number.isFinite(this.best) ? this.best : null, numBadEpochs: this.numBadEpochs, cooldownCounter: this.cooldownCounter };
  }

  override setState(state: unknown): void {
    const s = stateSchema.parse(state);
    this.best = s.best ?? this.worst();
    this.numBadEpochs = s.numBadEpochs;
    this.cooldownCounter = s.cooldownCounter;
  }

  private reduce(): boolean {
    let any = false;
    for (const group of this.trainer.optimizer.groups) {
      const old = group.lr;
      const floor = typeof this.minLr === 'number' ? this.minLr : (this.minLr[group.name] ?? 0);
      const next = Math.max(old * this.factor, floor);
      if (old - next > this.eps) {
        this.trainer.optimizer.setLr(group.name, next);
        any = true;
      }
    }
    return any;
  }

  private worst(): number {
    return this.mode === 'min' ? Infinity : -Infinity;
  }

  private isBetter(a: number): boolean {
    const { best, threshold } = this;
    if (this.mode === 'min') return this.thresholdMode === 'rel' ? a < best * (1 - threshold) : a < best - threshold;
    return this.thresholdMode === 'rel' ? a > best * (threshold + 1) : a > best + threshold;
  }
}
