import * as path from 'node:path';
import { z } from 'zod';
import { Callback } from './callback.js';
import { replaceDirAtomic, saveRunState } from '../trainer/run-state.js';
import type { Logs } from '../trainer/types.js';

export interface ModelCheckpointOptions {
  /** Run directory: writes `<dir>/best` and `<dir>/last`. */
  dir: string;
  monitor?: string;
  mode?: 'min' | 'max';
  /** Also write `last/` (weights + optimizer + trainer state, for resume) after every epoch. Default true. */
  saveLast?: boolean;
  /** Extra JSON state stored with `last/` (RNG states...), read at save time. */
  extraState?: () => Record<string, unknown>;
  /**
   * Writes the files a checkpoint needs besides weights (tokenizer.json, preprocessor_config.json...) into
   * each checkpoint directory before it is published, so `best/` and `last/` are usable on their own.
   */
  writeAssets?: (dir: string) => Promise<void>;
}

const stateSchema = z.object({ best: z.number().nullable(), bestEpoch: z.number() });

/**
 * Saves `best/` whenever the monitored value improves and `last/` (resumable) after every epoch. Each
 * directory is replaced whole (written beside it, then renamed), so a crash mid-save — or mid-epoch, when
 * nothing is written at all — never leaves a corrupt best checkpoint.
 */
export class ModelCheckpoint extends Callback {
  readonly name = 'modelCheckpoint';
  readonly dir: string;
  readonly monitor: string;
  readonly mode: 'min' | 'max';
  readonly saveLast: boolean;
  private readonly extraState: (() => Record<string, unknown>) | undefined;
  private readonly writeAssets: ((dir: string) => Promise<void>) | undefined;
  private best: number;
  bestEpoch = -1;

  constructor(options: ModelCheckpointOptions) {
    super();
    this.dir = options.dir;
    this.monitor = options.monitor ?? 'val_loss';
    this.mode = options.mode ?? 'min';
    this.saveLast = options.saveLast ?? true;
    this.extraState = options.extraState;
    this.writeAssets = options.writeAssets;
    this.best = this.mode === 'min' ? Infinity : -Infinity;
  }

  get bestDir(): string {
    return path.join(this.dir, 'best');
  }

  get lastDir(): string {
    return path.join(this.dir, 'last');
  }

  get bestValue(): number {
    return this.best;
  }

  override async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    const value = logs[this.monitor];
    // Without the monitored value (no validation split) every epoch counts as the best so far.
    const improved = value === undefined || (this.mode === 'min' ? value < this.best : value > this.best);
    if (improved && (value === undefined || Number.isFinite(value))) {
      if (value !== undefined) this.best = value;
      this.bestEpoch = epoch;
      await replaceDirAtomic(this.bestDir, async (tmp) => {
        await this.trainer.model.save(tmp);
        await this.writeAssets?.(tmp);
      });
    }
    if (this.saveLast) await this.writeLast();
  }

  /** Write `last/` now (also used when training is interrupted mid-epoch). */
  async writeLast(): Promise<void> {
    await saveRunState(this.lastDir, {
      model: this.trainer.model,
      optimizer: this.trainer.optimizer,
      trainer: this.trainer.getState(),
      extra: this.extraState?.() ?? {},
      ...(this.writeAssets ? { writeAssets: this.writeAssets } : {}),
    });
  }

  override getState(): z.infer<typeof stateSchema> {
    return { best: Number.isFinite(this.best) ? this.best : null, bestEpoch: this.bestEpoch };
  }

  override setState(state: unknown): void {
    const s = stateSchema.parse(state);
    this.best = s.best ?? (this.mode === 'min' ? Infinity : -Infinity);
    this.bestEpoch = s.bestEpoch;
  }
}
