import type { Logs, TrainerControl } from '../trainer/types.js';

export type { TrainerControl } from '../trainer/types.js';

/**
 * Lifecycle hooks, each optional and possibly async, with Keras semantics: epochs are 0-based, and the
 * batch hooks get the 0-based index of the batch within its epoch (a run resumed mid-epoch continues the
 * count). Batch logs hold `epoch`, `batch`, `size`, `step` (global optimizer steps taken: before the batch
 * in onBatchBegin, after it in onBatchEnd) and, in onBatchEnd, `loss`. Setting `trainer.stopTraining` in
 * onBatchEnd ends the epoch after that batch; onEpochEnd still runs for it (with the partial epoch's
 * logs), then onTrainEnd. onTrainEnd is skipped only when an AbortSignal interrupts fit() (the run is
 * meant to be resumed) or a callback throws. A callback that must survive a resume implements
 * getState/setState with JSON-serialisable state.
 */
export abstract class Callback {
  /** Unique per callback kind; keys its saved state. */
  abstract readonly name: string;
  protected trainer!: TrainerControl;

  setTrainer(trainer: TrainerControl): void {
    this.trainer = trainer;
  }

  onTrainBegin(_logs: Logs): void | Promise<void> {}
  onTrainEnd(_logs: Logs): void | Promise<void> {}
  onEpochBegin(_epoch: number, _logs: Logs): void | Promise<void> {}
  onEpochEnd(_epoch: number, _logs: Logs): void | Promise<void> {}
  onBatchBegin(_batch: number, _logs: Logs): void | Promise<void> {}
  onBatchEnd(_batch: number, _logs: Logs): void | Promise<void> {}

  getState(): unknown {
    return undefined;
  }

  setState(_state: unknown): void {}
}
