import { restoreRngStates } from '../trainer/rng-state.js';
import { restoreTrainer } from '../trainer/run-state.js';
import { Trainer, type FitResult } from '../trainer/trainer.js';
import type { Pipeline } from './pipeline.js';
import type { RunContext } from './setup.js';
import type { Training } from './training.js';

/**
 * Step 5: train on the pipeline (after restoring a resumed run's state), up to config.schedule.epochs.
 * A run that early stopping had already ended is not trained further. An interrupted fit leaves a
 * resumable last/ checkpoint.
 */
export async function fit<B>(
  run: RunContext,
  training: Training,
  pipeline: Pipeline<B>,
  o: { resumeFrom: string | undefined; signal: AbortSignal | undefined },
): Promise<FitResult> {
  const { config } = run;
  const { model, earlyStopping, checkpoint } = training;
  const trainer = new Trainer({
    model: training.trainable,
    task: pipeline.task,
    optimizer: training.optimizer,
    callbacks: training.callbacks,
    clipGradNorm: config.optim.clipGradNorm,
    accumulation: config.optim.accumulation,
    topK: config.eval.topK,
    signal: o.signal,
  });
  if (o.resumeFrom) {
    const state = await restoreTrainer(o.resumeFrom, trainer);
    const rngs = state.extra.rngs;
    if (Array.isArray(rngs) && rngs.every((x) => typeof x === 'number')) restoreRngStates(model, rngs, o.resumeFrom);
    run.log(`resumed from ${o.resumeFrom} at epoch ${trainer.currentEpoch + 1}`);
  }
  if (earlyStopping?.stoppedEpoch != null) return { history: trainer.history, interrupted: false, epochsCompleted: trainer.currentEpoch };
  const res = await trainer.fit({ train: pipeline.train, val: pipeline.val, epochs: config.schedule.epochs });
  if (res.interrupted) {
    await checkpoint.writeLast();
    run.log(`interrupted: resumable checkpoint in ${run.lastDir}`);
  }
  return res;
}
