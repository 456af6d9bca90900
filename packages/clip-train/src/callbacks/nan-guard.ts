import { Callback } from './callback.js';
import { TrainingError } from '../trainer/errors.js';
import type { Logs } from '../trainer/types.js';

/**
 * Stops training with a TrainingError naming the step, epoch and batch as soon as a batch loss is NaN or
 * ±Inf. Nothing is saved after a bad step (checkpoints are written at epoch ends only), so the last good
 * checkpoints stay intact.
 */
export class NanGuard extends Callback {
  readonly name = 'nanGuard';
  override onBatchEnd(batch: number, logs: Logs): void {
    const loss = logs.loss;
    if (loss !== undefined && !Number.isFinite(loss)) {
      this.trainer.stopTraining = true;
      throw new TrainingError(
        `loss is ${loss} at step ${logs.step ?? '?'} (epoch ${(logs.epoch ?? 0) + 1}, batch ${batch + 1}); ` +
          'training stopped. Lower the learning rate or set optim.clipGradNorm; the last saved checkpoints are intact.',
      );
    }
  }
}
