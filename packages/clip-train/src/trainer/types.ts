import type * as tf from '@tensorflow/tfjs-core';
import type { NamedVariable } from '@clip-ts/core';
import type { Optimizer } from '../optim/optimizer.js';

/** Per-batch or per-epoch numbers handed to callbacks (`loss`, `val_loss`, `val_top1`, `lr_heads`, ...). */
export type Logs = Record<string, number>;

/**
 * Anything that yields the batches of one epoch; the same epoch number must give the same batches, and
 * `startBatch` skips that many from the start (a run resumed mid-epoch).
 */
export interface BatchSource<B> {
  batches(epoch: number, options?: { startBatch?: number }): AsyncIterable<B>;
}

/** What an evaluation step produces; the caller owns (and disposes) every tensor. */
export interface EvalOutputs {
  loss: tf.Scalar;
  /** [B, D] image embeddings (normalised or not: only their directions are used). */
  imageEmbeds: tf.Tensor2D;
  /** [B, D] text embeddings; row i is the caption paired with image i. */
  textEmbeds: tf.Tensor2D;
}

/**
 * How the trainer turns a batch into a loss. The plain implementation runs the towers (`modelTask`); the
 * frozen-feature cache runs the heads on cached features. Both go through the same loop.
 */
export interface TrainTask<B> {
  /** Training loss of one batch (dropout on), a NEW scalar; called inside tf.variableGrads. */
  trainLoss(batch: B): tf.Scalar;
  /**
   * Optional: the training loss and its gradients w.r.t. `variables` (by name), as
   * tf.variableGrads(() => trainLoss(batch), variables) would give them, computed some other way (the CLIP
   * task's exact micro-batched step). The caller owns `value` and every gradient; called outside any tape.
   */
  lossAndGrads?(batch: B, variables: readonly tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap };
  /** Loss and embeddings with training behaviour off; NEW tensors the caller owns. */
  evalOutputs(batch: B): EvalOutputs;
  /** Number of pairs in the batch (for weighting means). */
  batchSize(batch: B): number;
  /** Free the batch's tensors once the trainer is done with it. */
  disposeBatch(batch: B): void;
}

/** The weights side of a model as the trainer needs it (for a CLIPModel: its namedVariables + saveCLIPModel). */
export interface TrainableModel {
  /** Every weight with its checkpoint name (vision_model.*, text_model.*, heads, logit_scale). */
  namedVariables(): NamedVariable[];
  /** Write a checkpoint directory (config + weights), atomically per file. */
  save(dir: string): Promise<void>;
}

/** Where a run stands; JSON-serialisable (optimizer tensors are saved separately). */
export interface TrainerState {
  /** Next epoch to run (or the one that was interrupted). */
  epoch: number;
  /** Batches of `epoch` already consumed (0 at an epoch boundary). */
  batchInEpoch: number;
  /** Running sums of the interrupted epoch's training loss. */
  epochLossSum: number;
  epochLossCount: number;
  globalStep: number;
  history: Logs[];
  callbacks: Record<string, unknown>;
}

/**
 * What a callback may read and change on the trainer that runs it. Lives here, not beside the Trainer or
 * the Callback class, so that trainer and callbacks depend on it without depending on each other.
 */
export interface TrainerControl {
  /**
   * Set to true to stop training. Set in onBatchEnd, the epoch ends after that batch (its logs average the
   * batches run, validation and onEpochEnd still happen); set in onEpochEnd, no further epoch starts.
   * onTrainEnd follows either way.
   */
  stopTraining: boolean;
  readonly optimizer: Optimizer;
  readonly model: TrainableModel;
  /** Epoch logs so far, oldest first. */
  readonly history: readonly Logs[];
  /** Optimizer steps taken so far. */
  readonly globalStep: number;
  /** Loop position, history and every callback's state, for a resumable checkpoint. */
  getState(): TrainerState;
}
