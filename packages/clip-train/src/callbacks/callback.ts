import type { AdamOptimizer } from '../optim/adam.js';
import type { Logs, TrainableModel } from '../trainer/types.js';
import type { TrainerState } from '../trainer/trainer.js';

/** What a callback may read and change on the trainer that runs it. */
export interface TrainerControl {
  /** Set to true to end training after the current epoch (or batch, checked after each step). */
  stopTraining: boolean;
  readonly optimizer: AdamOptimizer;
  readonly model: TrainableModel;
  /** Epoch logs so far, oldest first. */
  readonly history: readonly Logs[];
  /** Optimizer steps taken so far. */
  readonly globalStep: number;
  /** Loop position, history and every callback's state, for a resumable checkpoint. */
  getState(): TrainerState;
}

/**
 * Lifecycle hooks, each optional and possibly async; epochs are 0-based. A callback that must survive a
 * resume implements getState/setState with JSON-serialisable state.
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
  onBatchBegin(_step: number, _logs: Logs): void | Promise<void> {}
  onBatchEnd(_step: number, _logs: Logs): void | Promise<void> {}

  getState(): unknown {
    return undefined;
  }

  setState(_state: unknown): void {}
}
