import type * as tf from '@tensorflow/tfjs-core';

/** One weight the optimizer updates, with the name it is saved under and whether weight decay applies. */
export interface OptimParam {
  name: string;
  variable: tf.Variable;
  /** False for LayerNorm weights, biases and the logit scale (PyTorch's usual no-decay set). */
  decay: boolean;
}

/** A parameter group: its own learning rate and weight decay, like a PyTorch param group. */
export interface ParamGroup {
  name: string;
  params: OptimParam[];
  lr: number;
  weightDecay: number;
}

/** The JSON-serialisable settings of one group as saved with a checkpoint. */
export interface GroupState {
  name: string;
  lr: number;
  weightDecay: number;
}

/**
 * Serialisable optimizer state. `tensors` holds `<slot>.<param name>` per parameter that has taken a step
 * (`exp_avg.w`, `momentum_buffer.w`); whoever receives it from getState owns those tensors.
 */
export interface OptimizerState {
  /** Which optimizer wrote it (`adam`, `adamw`, `sgd`): a resume refuses a different kind. */
  kind: string;
  step: number;
  groups: GroupState[];
  tensors: Map<string, tf.Tensor>;
}

/**
 * What the Trainer, its callbacks and the resume code need from an optimizer. AdamOptimizer and
 * SGDOptimizer implement it; bring your own (a schedule, another rule) by implementing it too, most
 * easily by extending GroupedOptimizer.
 */
export interface Optimizer {
  /** Saved with the state; a checkpoint of one kind is not restored into another. */
  readonly kind: string;
  /** Optimizer steps taken. */
  readonly step: number;
  /** The parameter groups, with their current learning rates. */
  readonly groups: ReadonlyArray<Readonly<ParamGroup>>;
  /** Every updated variable, in group order. */
  variables(): tf.Variable[];
  /**
   * Apply one update from `grads` (keyed by the variable); a variable without a gradient is skipped.
   * The caller keeps ownership of the gradients.
   */
  applyGradients(grads: ReadonlyMap<tf.Variable, tf.Tensor>): void;
  /** Learning rate of `group`; without a group, the one rate all groups share (an error if they differ). */
  getLr(group?: string): number;
  /** Set every group's learning rate (takes effect at the next step). */
  setLr(lr: number): void;
  /** Set one group's learning rate (takes effect at the next step). */
  setLr(group: string, lr: number): void;
  /** A snapshot of the state; the caller owns the returned tensors (copies). */
  getState(): OptimizerState;
  /**
   * Restore a state from getState (or from disk); copies the tensors (the caller keeps ownership). A
   * ValueError naming `source` if groups, parameter names or shapes do not match.
   */
  setState(state: { step: number; groups: readonly GroupState[]; tensors: ReadonlyMap<string, tf.Tensor> }, source?: string): void;
  /** Free the state tensors (not the parameters). */
  dispose(): void;
}
