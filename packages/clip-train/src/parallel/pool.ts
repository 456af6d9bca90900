import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { CLIPModel } from '@clip-ts/core';
import { findRngs } from '../trainer/rng-state.js';
import { awaitCount, CTRL, fail, newSharedControl, type SharedControl } from './barrier.js';
import { ParallelError } from './errors.js';
import { sharedGather } from './gather.js';
import { heapView } from './heap-view.js';
import { layoutOf, sharedFloats, writeVariables, type VariableLayout } from './layout.js';
import type { InitMessage, StepMessage, WorkerReply } from './protocol.js';
import { shardLoss } from './shard-step.js';
import { workerUrl } from './worker-url.js';
import { PhaseClock, readPhaseTimes, sharedPhaseTimes, type PhaseTimes } from './timing.js';

export interface ReplicaPoolOptions {
  /** Total replicas including the main thread (≥ 2; one replica needs no pool). */
  replicas: number;
  /** Largest batch a step will see (sizes the shared embedding buffers). */
  maxBatch: number;
  frozen: { vision: boolean; text: boolean };
  /** Longest wait for the other replicas at a barrier, and for startup (default 10 minutes). */
  timeoutMs?: number;
  /** Test hook: make one worker fail at a pool step. */
  fault?: { replica: number; step: number; kind: 'throw' | 'exit' };
}

/** One caption batch as the pool needs it (a CaptionBatch fits). Borrowed. */
export interface PoolBatch {
  pixelValues: tf.Tensor4D;
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
}

/** Rows [start, end) of replica r when `batch` rows are split over `replicas` (the first ones take the remainder). */
export function shardRows(batch: number, replicas: number, r: number): { start: number; end: number } {
  const base = Math.floor(batch / replicas);
  const extra = batch % replicas;
  const start = r * base + Math.min(r, extra);
  return { start, end: start + base + (r < extra ? 1 : 0) };
}

/**
 * Data-parallel training of one CLIPModel: the main thread is replica 0, `replicas − 1` worker threads
 * hold copies of the model. Per step each replica runs its share of the batch through its towers, the
 * embeddings are all-gathered, each computes its share of the exact full-batch gradient, and main sums
 * the shares in replica order (so the result does not depend on timing). Main's optimizer then steps, and
 * the new trainable weights reach the workers through shared memory at the next step. Only main holds
 * optimizer state, so checkpoints and resume are exactly those of single-replica training.
 */
export class ReplicaPool {
  readonly replicas: number;
  private readonly model: CLIPModel;
  private readonly options: ReplicaPoolOptions;
  private readonly workers: Worker[];
  private readonly control: SharedControl;
  private readonly weightsLayout: VariableLayout;
  private readonly weights: Float32Array;
  private readonly gradLayout: VariableLayout;
  private readonly grads: Float32Array[];
  private readonly imageEmbeds: Float32Array;
  private readonly textEmbeds: Float32Array;
  private readonly byName: Map<string, tf.Variable>;
  private readonly trainable: Set<string>;
  private readonly timeoutMs: number;
  private readonly phaseTimes: Float64Array;
  private readonly clock: PhaseClock;
  private step = 0;
  private closed = false;

  private constructor(model: CLIPModel, options: ReplicaPoolOptions) {
    this.model = model;
    this.options = options;
    this.replicas = options.replicas;
    this.timeoutMs = options.timeoutMs ?? 600_000;
    const named = model.namedVariables();
    this.byName = new Map(named.map((nv) => [nv.name, nv.variable] as const));
    this.weightsLayout = layoutOf(named);
    this.weights = sharedFloats(this.weightsLayout.size);
    const trainable = named.filter((nv) => nv.variable.trainable);
    this.trainable = new Set(trainable.map((nv) => nv.name));
    this.gradLayout = layoutOf(trainable);
    this.grads = Array.from({ length: this.replicas }, (_, r) => (r === 0 ? new Float32Array(0) : sharedFloats(this.gradLayout.size)));
    this.imageEmbeds = sharedFloats(options.maxBatch * model.projectionDim);
    this.textEmbeds = sharedFloats(options.maxBatch * model.projectionDim);
    this.control = newSharedControl();
    this.phaseTimes = sharedPhaseTimes(this.replicas);
    this.clock = new PhaseClock(this.phaseTimes, 0);
    this.workers = [];
  }

  /**
   * Start the workers with copies of `model` as it is now (weights, which weights train). The caller owns
   * the pool: close() it when done. A worker that cannot start rejects with a ParallelError.
   */
  static async start(model: CLIPModel, options: ReplicaPoolOptions): Promise<ReplicaPool> {
    if (!Number.isInteger(options.replicas) || options.replicas < 2) throw new ParallelError(`a replica pool needs ≥ 2 replicas, got ${options.replicas}`);
    const pool = new ReplicaPool(model, options);
    try {
      await pool.spawn();
      return pool;
    } catch (err) {
      pool.close();
      throw err;
    }
  }

  private async spawn(): Promise<void> {
    writeVariables(this.weightsLayout, this.byName, this.weights);
    const url = workerUrl('worker.js');
    const rngCount = findRngs(this.model).length;
    const ready: Array<Promise<void>> = [];
    for (let r = 1; r < this.replicas; r++) {
      const init: InitMessage = {
        type: 'init',
        replica: r,
        replicas: this.replicas,
        backend: tf.getBackend(),
        modelConfig: this.model.getConfig(),
        frozen: this.options.frozen,
        control: this.control,
        weightsLayout: this.weightsLayout,
        weights: this.weights,
        gradLayout: this.gradLayout,
        grads: this.grads,
        imageEmbeds: this.imageEmbeds,
        textEmbeds: this.textEmbeds,
        maxBatch: this.options.maxBatch,
        timeoutMs: this.timeoutMs,
        phaseTimes: this.phaseTimes,
        ...(this.options.fault?.replica === r ? { fault: { step: this.options.fault.step, kind: this.options.fault.kind } } : {}),
      };
      const worker = new Worker(url, { workerData: init });
      this.workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new ParallelError(`replica ${r} did not start within ${this.timeoutMs} ms`)), this.timeoutMs);
          const done = (err?: Error) => {
            clearTimeout(timer);
            // From now on the workers must not keep the process alive.
            worker.unref();
            if (err) reject(err);
            else resolve();
          };
          worker.once('message', (m: WorkerReply) => {
            if (m.type === 'error') done(new ParallelError(m.message));
            else if (m.rngCount !== rngCount) done(new ParallelError(`replica ${r} has ${m.rngCount} dropout generators, main ${rngCount}: not the same model`));
            else done();
          });
          worker.once('error', (err) => done(new ParallelError(`replica ${r} failed to start: ${err.message}`, { cause: err })));
          worker.once('exit', (code) => done(new ParallelError(`replica ${r} exited with code ${code} while starting`)));
        }),
      );
      // After startup a dead worker is noticed through the shared failure flag (see worker.ts); these keep
      // an 'error' event from becoming an uncaught exception on main.
      worker.on('error', (err) => fail(this.control, `replica ${r}: ${err.message}`));
    }
    await Promise.all(ready);
  }

  /**
   * Loss and summed gradients of one full batch over all replicas, for `variables` (the trainable ones,
   * each present in the pool's layout). Synchronous: main blocks on the barriers while the workers run.
   * Returns NEW tensors the caller owns: the loss (of the whole batch) and one gradient per variable,
   * keyed by variable name as tf.variableGrads does.
   */
  lossAndGrads(batch: PoolBatch, variables: readonly tf.Variable[], positives: Float32Array | undefined): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    if (this.closed) throw new ParallelError('the replica pool is closed');
    const failed = Atomics.load(this.control.ctrl, CTRL.FAILED);
    if (failed !== 0) throw new ParallelError('a replica failed earlier; the pool cannot continue');
    const b = batch.pixelValues.shape[0];
    if (b > this.options.maxBatch) throw new ParallelError(`batch of ${b} rows exceeds the pool's maxBatch ${this.options.maxBatch}`);
    const step = this.step;
    this.step += 1;
    this.clock.reset();
    writeVariables(this.gradLayout, this.byName, this.weights, this.trainable);
    this.clock.mark('weights');
    const rngStates = findRngs(this.model).map((r) => r.state);
    const seq = batch.inputIds.shape[1];
    // The workers' pixel rows: one copy each, straight out of the batch's storage (a wasm heap view is
    // valid only until the next tfjs call, so every shard is copied before any). dataSync may hand out
    // the backend's own storage (cpu): the copies are what gets transferred, never the original.
    const rowFloats = batch.pixelValues.size / b;
    const allPixels = heapView(batch.pixelValues) ?? (batch.pixelValues.dataSync() as Float32Array);
    const pixelShards = this.workers.map((_, i) => {
      const { start, end } = shardRows(b, this.replicas, i + 1);
      return allPixels.slice(start * rowFloats, end * rowFloats);
    });
    for (let r = 1; r < this.replicas; r++) {
      const { start, end } = shardRows(b, this.replicas, r);
      const rows = (t: tf.Tensor): tf.Tensor => tf.slice(t, [start], [end - start]);
      const [ids, mask] = tf.tidy(() => [tf.cast(rows(batch.inputIds), 'int32'), tf.cast(rows(batch.attentionMask), 'int32')]);
      const pixels = pixelShards[r - 1] as Float32Array;
      const inputIds = ((ids as tf.Tensor).dataSync() as Int32Array).slice();
      const attentionMask = ((mask as tf.Tensor).dataSync() as Int32Array).slice();
      tf.dispose([ids as tf.Tensor, mask as tf.Tensor]);
      const msg: StepMessage = {
        type: 'step',
        step,
        batchSize: b,
        rowStart: start,
        rowEnd: end,
        pixels,
        pixelShape: [end - start, ...(batch.pixelValues.shape.slice(1) as [number, number, number])],
        inputIds,
        attentionMask,
        seqLength: seq,
        positives,
        rngStates,
      };
      (this.workers[r - 1] as Worker).postMessage(msg, [pixels.buffer as ArrayBuffer, inputIds.buffer, attentionMask.buffer]);
    }
    const rows = { ...shardRows(b, this.replicas, 0), batchSize: b };
    this.clock.mark('send');
    const { gather, failure } = sharedGather(
      { control: this.control, imageEmbeds: this.imageEmbeds, textEmbeds: this.textEmbeds, dim: this.model.projectionDim, replicas: this.replicas, timeoutMs: this.timeoutMs },
      step,
      rows,
      this.clock,
    );
    let value: tf.Scalar | undefined;
    let own: tf.NamedTensorMap | undefined;
    try {
      const out = tf.tidy(() => {
        const shard = {
          pixels: tf.slice(batch.pixelValues, [0], [rows.end]),
          inputIds: tf.slice(batch.inputIds, [0], [rows.end]),
          attentionMask: tf.slice(batch.attentionMask, [0], [rows.end]),
        };
        const pos = positives ? tf.tensor2d(positives, [b, b]) : undefined;
        return tf.variableGrads(() => shardLoss(this.model, this.options.frozen, shard, rows, gather, pos), [...variables]);
      });
      value = out.value;
      own = out.grads;
      const failed = failure();
      if (failed) throw failed;
      this.clock.mark('lossBackward');
      awaitCount(this.control, CTRL.GRADS, (this.replicas - 1) * (step + 1), this.timeoutMs, `the gradients of step ${step}`);
      this.clock.mark('grads');
      const grads = this.reduce(variables, own);
      this.clock.mark('reduce');
      return { value, grads };
    } catch (err) {
      // Release workers still waiting for main's embeddings, and leave nothing allocated.
      fail(this.control, `main replica, step ${step}: ${(err as Error).message}`);
      if (value) value.dispose();
      throw err instanceof ParallelError ? err : new ParallelError(`data-parallel step ${step} failed on the main replica: ${(err as Error).message}`, { cause: err });
    } finally {
      if (own) tf.dispose(Object.values(own));
    }
  }

  /** Main's gradient plus every worker slot, in replica order. New tensors, one per variable. */
  private reduce(variables: readonly tf.Variable[], own: tf.NamedTensorMap): tf.NamedTensorMap {
    const index = new Map(this.gradLayout.names.map((n, i) => [n, i] as const));
    const nameOf = new Map([...this.byName].map(([n, v]) => [v, n] as const));
    const out: tf.NamedTensorMap = {};
    for (const v of variables) {
      const i = index.get(nameOf.get(v) ?? '');
      if (i === undefined) throw new ParallelError(`variable ${nameOf.get(v) ?? v.name} was not trainable when the pool started`);
      const off = this.gradLayout.offsets[i] as number;
      const g = own[v.name];
      // The backend's (SIMD) add instead of a JS loop, and main's own gradient never leaves the device.
      // Same order, ((own + slot1) + slot2) ..., so the same floats as summing element by element. The
      // slot views are used at once and disposed: a backend that keeps the array (cpu) never holds it.
      out[v.name] = tf.tidy(() => {
        let sum: tf.Tensor = g ? g.clone() : tf.zeros(v.shape);
        for (let r = 1; r < this.replicas; r++) {
          const slot = (this.grads[r] as Float32Array).subarray(off, off + v.size);
          sum = tf.add(sum, tf.tensor(slot, v.shape));
        }
        return sum;
      });
    }
    return out;
  }

  /**
   * Wall milliseconds per phase summed over every step so far, one entry per replica (main first): where
   * a step's time goes on each replica (bench/tasks.mjs train-parallel prints it).
   */
  timings(): PhaseTimes[] {
    return readPhaseTimes(this.phaseTimes, this.replicas);
  }

  /** Stop the workers (idempotent). Their model copies go with them. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.control.ctrl, CTRL.ABORT, 1);
    for (const w of this.workers) {
      w.postMessage({ type: 'close' });
      void w.terminate();
    }
  }

  dispose(): void {
    this.close();
  }
}
