import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer } from '../optim/optimizer.js';
import { clipByGlobalNorm } from '../optim/clip-grad.js';
import type { Callback } from '../callbacks/callback.js';
import { TrainingError } from './errors.js';
import { evaluateCaptionSplit } from '../evaluation/split.js';
import type { BatchSource, Logs, TrainTask, TrainableModel, TrainerControl, TrainerState } from './types.js';

export interface TrainerOptions<B> {
  model: TrainableModel;
  task: TrainTask<B>;
  optimizer: Optimizer;
  callbacks?: Callback[];
  /** Clip gradients to this global L2 norm (torch's clip_grad_norm_); off when undefined. */
  clipGradNorm?: number;
  /** Micro-batches whose gradients are averaged into one optimizer step (default 1). */
  accumulation?: number;
  /** k values of the in-batch top-k metrics (default [1, 5]). */
  topK?: number[];
  /** Aborting finishes the current optimizer step, then fit() returns with `interrupted` set. */
  signal?: AbortSignal;
}

export interface FitOptions<B> {
  train: BatchSource<B>;
  val?: BatchSource<B>;
  /** Total number of epochs (a resumed run continues from its saved epoch up to this). */
  epochs: number;
}

export interface FitResult {
  history: Logs[];
  /** True when the signal aborted training; the state is mid-epoch (see getState) and can be resumed. */
  interrupted: boolean;
  /** Epochs fully completed. */
  epochsCompleted: number;
}

/**
 * The training loop: epochs of optimizer steps over `train`, an evaluation pass over `val` after each epoch,
 * callbacks around everything. Per step the only device→CPU read is the loss (needed for logs and the NaN
 * guard); gradients, clipping and the update stay on the device.
 */
export class Trainer<B> implements TrainerControl {
  stopTraining = false;
  readonly model: TrainableModel;
  readonly optimizer: Optimizer;
  readonly callbacks: Callback[];
  history: Logs[] = [];
  private readonly task: TrainTask<B>;
  private readonly clipGradNorm: number | undefined;
  private readonly accumulation: number;
  private readonly topK: number[];
  private readonly signal: AbortSignal | undefined;
  private step = 0;
  private epoch = 0;
  private batchInEpoch = 0;
  private epochLossSum = 0;
  private epochLossCount = 0;

  constructor(options: TrainerOptions<B>) {
    this.model = options.model;
    this.task = options.task;
    this.optimizer = options.optimizer;
    this.callbacks = options.callbacks ?? [];
    this.clipGradNorm = options.clipGradNorm;
    this.accumulation = options.accumulation ?? 1;
    if (!Number.isInteger(this.accumulation) || this.accumulation < 1) {
      throw new TrainingError(`accumulation must be an integer ≥ 1, got ${this.accumulation}`);
    }
    this.topK = options.topK ?? [1, 5];
    this.signal = options.signal;
    const names = new Set<string>();
    for (const cb of this.callbacks) {
      if (names.has(cb.name)) throw new TrainingError(`two callbacks are named '${cb.name}'; their saved state would clash`);
      names.add(cb.name);
      cb.setTrainer(this);
    }
  }

  get globalStep(): number {
    return this.step;
  }

  /** The epoch the next fit() starts at (after setState, the resumed one). */
  get currentEpoch(): number {
    return this.epoch;
  }

  async fit(options: FitOptions<B>): Promise<FitResult> {
    this.stopTraining = false;
    await this.emit((cb) => cb.onTrainBegin({ epoch: this.epoch }));
    let interrupted = false;
    while (this.epoch < options.epochs && !this.stopTraining) {
      const epoch = this.epoch;
      const started = performance.now();
      if (this.batchInEpoch === 0) await this.emit((cb) => cb.onEpochBegin(epoch, {}));
      interrupted = (await this.trainEpoch(options.train, epoch)) === 'interrupted';
      if (interrupted) break;
      // A stop requested in onBatchEnd closes this epoch early, as in Keras: it is logged, validated and
      // passed to onEpochEnd like any other, and counts as completed (a resume starts at the next one).
      const logs: Logs = { epoch, loss: this.epochLossCount > 0 ? this.epochLossSum / this.epochLossCount : NaN };
      if (options.val) {
        const v = await this.evaluate(options.val, epoch);
        for (const [k, value] of Object.entries(v)) logs[`val_${k}`] = value;
      }
      for (const g of this.optimizer.groups) logs[`lr_${g.name}`] = g.lr;
      logs.seconds = (performance.now() - started) / 1000;
      this.history.push(logs);
      this.epoch = epoch + 1;
      this.batchInEpoch = 0;
      this.epochLossSum = 0;
      this.epochLossCount = 0;
      // Callbacks see the epoch as finished (LR changes apply to the next one; checkpoints save epoch+1).
      await this.emit((cb) => cb.onEpochEnd(epoch, logs));
      if (this.signal?.aborted) {
        interrupted = true;
        break;
      }
    }
    const final = this.history[this.history.length - 1] ?? {};
    if (!interrupted) await this.emit((cb) => cb.onTrainEnd({ ...final }));
    return { history: this.history, interrupted, epochsCompleted: this.epoch };
  }

  /** Mean loss and in-batch top-k accuracies over `source` with this trainer's task (see evaluateCaptionSplit). */
  async evaluate(source: BatchSource<B>, epoch = 0): Promise<Logs> {
    return (await evaluateCaptionSplit(this.task, source, { epoch, topK: this.topK })).logs;
  }

  getState(): TrainerState {
    const callbacks: Record<string, unknown> = {};
    for (const cb of this.callbacks) {
      const s = cb.getState();
      if (s !== undefined) callbacks[cb.name] = s;
    }
    return {
      epoch: this.epoch,
      batchInEpoch: this.batchInEpoch,
      epochLossSum: this.epochLossSum,
      epochLossCount: this.epochLossCount,
      globalStep: this.step,
      history: this.history.map((h) => ({ ...h })),
      callbacks,
    };
  }

  /** Restore loop position, history and callback state (the optimizer and weights are restored by their owners). */
  setState(state: TrainerState): void {
    this.epoch = state.epoch;
    this.batchInEpoch = state.batchInEpoch;
    this.epochLossSum = state.epochLossSum;
    this.epochLossCount = state.epochLossCount;
    this.step = state.globalStep;
    this.history = state.history.map((h) => ({ ...h }));
    for (const cb of this.callbacks) {
      if (state.callbacks[cb.name] !== undefined) cb.setState(state.callbacks[cb.name]);
    }
  }

  /**
   * One epoch of steps. 'interrupted': the signal stopped it (state then points inside the epoch);
   * 'stopped': a callback set stopTraining in onBatchEnd; 'done': every batch ran.
   */
  private async trainEpoch(source: BatchSource<B>, epoch: number): Promise<'done' | 'stopped' | 'interrupted'> {
    const variables = this.optimizer.variables().filter((v) => v.trainable);
    let pending: Map<tf.Variable, tf.Tensor> | null = null;
    let pendingCount = 0;
    try {
      // Resuming mid-epoch: the first batchInEpoch batches were already trained on.
      for await (const batch of source.batches(epoch, { startBatch: this.batchInEpoch })) {
        // Keras semantics: callbacks get the 0-based index within the epoch; `step` in the logs is the
        // global optimizer step count (before this batch in onBatchBegin, after it in onBatchEnd).
        const index = this.batchInEpoch;
        const batchLogs: Logs = { epoch, batch: index, size: this.task.batchSize(batch), step: this.step };
        await this.emit((cb) => cb.onBatchBegin(index, batchLogs));
        let lossValue: number;
        try {
          const { value, grads } = this.task.lossAndGrads
            ? this.task.lossAndGrads(batch, variables)
            : tf.variableGrads(() => this.task.trainLoss(batch), variables);
          pending = accumulate(pending, grads, variables);
          lossValue = (await value.data())[0] as number;
          value.dispose();
        } finally {
          this.task.disposeBatch(batch);
        }
        pendingCount += 1;
        this.batchInEpoch += 1;
        this.epochLossSum += lossValue;
        this.epochLossCount += 1;
        if (pendingCount === this.accumulation) {
          this.applyStep(pending, pendingCount);
          pending = null;
          pendingCount = 0;
        }
        batchLogs.loss = lossValue;
        batchLogs.step = this.step;
        await this.emit((cb) => cb.onBatchEnd(index, batchLogs));
        if (this.stopTraining) break;
        // Interrupt only between optimizer steps, so the saved state never holds half an accumulation.
        // The steps above may settle entirely in microtasks (cached in-memory data, synchronous backends),
        // which would starve a SIGINT handler until the epoch ends: give macrotasks one turn first.
        if (pending === null && this.signal) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (this.signal.aborted) return 'interrupted';
        }
      }
      // A trailing partial accumulation still makes a step (averaged over the micro-batches it has).
      if (pending !== null) {
        this.applyStep(pending, pendingCount);
        pending = null;
      }
      return this.stopTraining ? 'stopped' : 'done';
    } finally {
      if (pending) tf.dispose([...pending.values()]);
    }
  }

  private applyStep(grads: Map<tf.Variable, tf.Tensor>, count: number): void {
    const vars = [...grads.keys()];
    let list = [...grads.values()];
    const owned: tf.Tensor[] = [...list];
    if (count > 1) {
      list = list.map((g) => tf.div(g, count));
      owned.push(...list);
    }
    if (this.clipGradNorm !== undefined) {
      const clipped = clipByGlobalNorm(list, this.clipGradNorm);
      list = clipped.grads;
      owned.push(...list, clipped.norm);
    }
    this.optimizer.applyGradients(new Map(vars.map((v, i) => [v, list[i] as tf.Tensor])));
    this.step += 1;
    tf.dispose(owned);
  }

  private async emit(fn: (cb: Callback) => void | Promise<void>): Promise<void> {
    for (const cb of this.callbacks) await fn(cb);
  }
}

/** Add a micro-batch's gradients into the running sums (disposing what is replaced). */
function accumulate(
  sums: Map<tf.Variable, tf.Tensor> | null,
  grads: tf.NamedTensorMap,
  variables: readonly tf.Variable[],
): Map<tf.Variable, tf.Tensor> {
  const out = new Map<tf.Variable, tf.Tensor>();
  for (const v of variables) {
    const g = grads[v.name];
    if (!g) continue;
    const prev = sums?.get(v);
    if (prev) {
      out.set(v, tf.add(prev, g));
      prev.dispose();
      g.dispose();
    } else {
      out.set(v, g);
    }
  }
  return out;
}
