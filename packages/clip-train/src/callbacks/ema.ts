import { z } from 'zod';
import { Callback } from './callback.js';
import type { ModelEma } from '../ema/model-ema.js';
import type { Logs } from '../trainer/types.js';

export interface EmaCallbackOptions {
  ema: ModelEma;
  /**
   * Validation with the current model weights (`val_loss`-style keys without the prefix: `loss`,
   * `top1`...). Run with the averages swapped in; its results go into the epoch logs as `ema_val_<key>`.
   */
  evaluate?: (epoch: number) => Promise<Logs>;
}

const stateSchema = z.object({ steps: z.number().int().nonnegative() });

/**
 * Updates a ModelEma after every optimizer step (the trainer's step count advancing between batches, so
 * gradient accumulation and a trailing partial step are both followed), and validates the averaged
 * weights after each epoch. Must come before the callbacks that read the epoch logs (checkpoint, history).
 */
export class EmaCallback extends Callback {
  readonly name = 'ema';
  private readonly ema: ModelEma;
  private readonly evaluate: ((epoch: number) => Promise<Logs>) | undefined;
  /** Optimizer steps folded into the average. */
  private steps = 0;

  constructor(options: EmaCallbackOptions) {
    super();
    this.ema = options.ema;
    this.evaluate = options.evaluate;
  }

  override onBatchEnd(): void {
    this.catchUp();
  }

  override async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    this.catchUp();
    if (!this.evaluate) return;
    const evaluate = this.evaluate;
    const v = await this.ema.withAveragedWeights(() => evaluate(epoch));
    for (const [k, value] of Object.entries(v)) logs[`ema_val_${k}`] = value;
  }

  private catchUp(): void {
    while (this.steps < this.trainer.globalStep) {
      this.steps += 1;
      this.ema.update(this.steps);
    }
  }

  override getState(): z.infer<typeof stateSchema> {
    return { steps: this.steps };
  }

  override setState(state: unknown): void {
    this.steps = stateSchema.parse(state).steps;
  }
}
