import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, type CLIPModel } from '@clip-ts/core';
import { embedRows, embedWidth, type EmbedKind, type EmbedRows } from './embed-op.js';
import type { EmbedInit, EmbedReply, EmbedRequest } from './embed-protocol.js';
import { ParallelError } from './errors.js';
import { layoutOf, sharedFloats, writeVariables } from './layout.js';
import { shardRows } from './pool.js';
import { workerUrl } from './worker-url.js';

export interface EmbedPoolOptions {
  /** Total replicas including the main thread (≥ 2; one replica needs no pool). */
  replicas: number;
  /** Longest wait for a replica's answer, and for startup (default 10 minutes). */
  timeoutMs?: number;
  /** Test hook: make one worker fail at a request (requests count from 0). */
  fault?: { replica: number; request: number; kind: 'throw' | 'exit' };
}

/** Text rows as the towers take them (a TokenizerOutput's tensors fit). Borrowed. */
export interface EmbedTextInput {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
}

interface Pending {
  resolve: (data: Float32Array) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Forward-only data parallelism: each request's rows are split over the replicas (the main thread is
 * replica 0, the others worker threads holding copies of the model as it was at start()), each embeds
 * its rows, and the results come back concatenated in the input's order. Every row gets the floats the
 * single-process call gives it up to the backend's per-thread rounding (a row never depends on the
 * other rows of its batch). Used by `clip embed`, zero-shot over a folder and the frozen-feature cache
 * when replicas beat wasm threads (docs/training.md). The model must not change while the pool is used.
 */
export class EmbedPool {
  readonly replicas: number;
  private readonly model: CLIPModel;
  private readonly timeoutMs: number;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<string, Pending>();
  private next = 0;
  private broken: Error | undefined;
  private closed = false;

  private constructor(model: CLIPModel, options: EmbedPoolOptions) {
    this.model = model;
    this.replicas = options.replicas;
    this.timeoutMs = options.timeoutMs ?? 600_000;
  }

  /**
   * Start the workers with copies of `model` as it is now. The caller owns the pool: close() it when
   * done. A worker that cannot start rejects with a ParallelError.
   */
  static async start(model: CLIPModel, options: EmbedPoolOptions): Promise<EmbedPool> {
    if (!Number.isInteger(options.replicas) || options.replicas < 2) throw new ParallelError(`an embedding pool needs ≥ 2 replicas, got ${options.replicas}`);
    const pool = new EmbedPool(model, options);
    try {
      await pool.spawn(options);
      return pool;
    } catch (err) {
      pool.close();
      throw err;
    }
  }

  private async spawn(options: EmbedPoolOptions): Promise<void> {
    const named = this.model.namedVariables();
    const weightsLayout = layoutOf(named);
    const weights = sharedFloats(weightsLayout.size);
    writeVariables(weightsLayout, new Map(named.map((nv) => [nv.name, nv.variable] as const)), weights);
    const url = workerUrl('embed-worker.js');
    const ready: Array<Promise<void>> = [];
    for (let r = 1; r < this.replicas; r++) {
      const init: EmbedInit = {
        replica: r,
        backend: tf.getBackend(),
        modelConfig: this.model.getConfig(),
        weightsLayout,
        weights,
        ...(options.fault?.replica === r ? { fault: { request: options.fault.request, kind: options.fault.kind } } : {}),
      };
      const worker = new Worker(url, { workerData: init });
      this.workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new ParallelError(`replica ${r} did not start within ${this.timeoutMs} ms`)), this.timeoutMs);
          const onExit = (code: number) => done(new ParallelError(`replica ${r} exited with code ${code} while starting`));
          const done = (err?: Error) => {
            clearTimeout(timer);
            worker.off('exit', onExit);
            // From now on the workers must not keep the process alive.
            worker.unref();
            if (err) reject(err);
            else resolve();
          };
          worker.once('message', (m: EmbedReply) => done(m.type === 'error' ? new ParallelError(m.message) : undefined));
          worker.once('exit', onExit);
        }),
      );
      worker.on('message', (m: EmbedReply) => {
        if (m.type === 'ready' || m.id < 0) return;
        const p = this.settle(r, m.id);
        if (m.type === 'result') p?.resolve(m.data);
        else p?.reject(new ParallelError(m.message));
      });
      // A dead or failing worker fails everything it still owes and the pool with it.
      worker.on('error', (err) => this.breakPool(new ParallelError(`replica ${r} failed: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => {
        if (!this.closed) this.breakPool(new ParallelError(`replica ${r} exited with code ${code}`));
      });
    }
    await Promise.all(ready);
  }

  /** L2-normalised image embeddings [n, projectionDim] (CLIPModel.encodeImages) of processed pixels [n, 3, H, W] (borrowed). */
  embedImages(pixels: tf.Tensor4D): Promise<Float32Array> {
    return this.run('images', pixels);
  }

  /** L2-normalised text embeddings [n, projectionDim] (CLIPModel.encodeTexts) of token ids and mask [n, seq] (borrowed). */
  embedTexts(input: EmbedTextInput): Promise<Float32Array> {
    return this.run('texts', input);
  }

  /** Image-tower features [n, hidden] in inference mode (what the frozen-feature cache stores). */
  imageFeatures(pixels: tf.Tensor4D): Promise<Float32Array> {
    return this.run('imageFeatures', pixels);
  }

  /** Text-tower features [n, hidden] in inference mode. */
  textFeatures(input: EmbedTextInput): Promise<Float32Array> {
    return this.run('textFeatures', input);
  }

  /** Row-major [n, width] results of one request: a NEW array, the caller's. */
  private async run(kind: EmbedKind, input: tf.Tensor4D | EmbedTextInput): Promise<Float32Array> {
    if (this.closed) throw new ParallelError('the embedding pool is closed');
    if (this.broken) throw new ParallelError(`the embedding pool cannot continue: ${this.broken.message}`, { cause: this.broken });
    const shard = shardsOf(kind, input);
    const n = shard.count;
    const width = embedWidth(this.model, kind);
    const out = new Float32Array(n * width);
    const id = this.next++;
    const owed: Array<Promise<void>> = [];
    for (let r = 1; r < this.replicas; r++) {
      const { start, end } = shardRows(n, this.replicas, r);
      if (end === start) continue;
      const rows = shard.rows(start, end);
      owed.push(this.request(r, { type: 'embed', id, kind, rows }).then((data) => out.set(data, start * width)));
    }
    // Main's own share runs while the workers compute theirs.
    let failed: unknown;
    try {
      const { end } = shardRows(n, this.replicas, 0);
      if (end > 0) out.set(embedRows(this.model, kind, shard.rows(0, end)), 0);
    } catch (err) {
      failed = err;
    }
    const settled = await Promise.allSettled(owed);
    if (failed !== undefined) throw failed;
    const bad = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (bad) throw bad.reason;
    return out;
  }

  private request(r: number, req: EmbedRequest): Promise<Float32Array> {
    return new Promise<Float32Array>((resolve, reject) => {
      const key = `${r}:${req.id}`;
      const timer = setTimeout(() => {
        this.settle(r, req.id);
        const err = new ParallelError(`replica ${r}: no answer to request ${req.id} within ${this.timeoutMs} ms (it died or hangs)`);
        this.breakPool(err);
        reject(err);
      }, this.timeoutMs);
      this.pending.set(key, { resolve, reject, timer });
      const buffers = 'pixels' in req.rows ? [req.rows.pixels.buffer] : [req.rows.inputIds.buffer, req.rows.attentionMask.buffer];
      (this.workers[r - 1] as Worker).postMessage(req, buffers as ArrayBuffer[]);
    });
  }

  private settle(r: number, id: number): Pending | undefined {
    const key = `${r}:${id}`;
    const p = this.pending.get(key);
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.pending.delete(key);
    return p;
  }

  private breakPool(err: Error): void {
    this.broken ??= err;
    for (const [key, p] of [...this.pending]) {
      clearTimeout(p.timer);
      this.pending.delete(key);
      p.reject(err);
    }
  }

  /** Stop the workers (idempotent). Their model copies go with them. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.breakPool(new ParallelError('the embedding pool was closed'));
    for (const w of this.workers) {
      w.postMessage({ type: 'close' });
      void w.terminate();
    }
  }

  dispose(): void {
    this.close();
  }
}

/** The request's row count and a copier of rows [start, end) into arrays the request owns. */
function shardsOf(kind: EmbedKind, input: tf.Tensor4D | EmbedTextInput): { count: number; rows: (start: number, end: number) => EmbedRows } {
  const image = kind === 'images' || kind === 'imageFeatures';
  if (image) {
    if (!(input instanceof tf.Tensor) || input.rank !== 4 || input.dtype !== 'float32') {
      throw new ShapeError(`EmbedPool ${kind}: expected float32 pixels [n, 3, H, W]`);
    }
    const [n, c, h, w] = input.shape;
    const size = c * h * w;
    // One read of the whole batch; each shard then takes its own copy (transferred to its worker).
    const all = input.dataSync() as Float32Array;
    return { count: n, rows: (s, e) => ({ pixels: all.slice(s * size, e * size), shape: [e - s, c, h, w] }) };
  }
  if (input instanceof tf.Tensor || input.inputIds.rank !== 2 || input.attentionMask.shape.join(',') !== input.inputIds.shape.join(',')) {
    throw new ShapeError(`EmbedPool ${kind}: expected inputIds and attentionMask of one shape [n, seq]`);
  }
  const [n, seq] = input.inputIds.shape;
  const ids = tf.tidy(() => tf.cast(input.inputIds, 'int32'));
  const mask = tf.tidy(() => tf.cast(input.attentionMask, 'int32'));
  const allIds = ids.dataSync() as Int32Array;
  const allMask = mask.dataSync() as Int32Array;
  const copy = { ids: allIds.slice(), mask: allMask.slice() };
  tf.dispose([ids, mask]);
  return { count: n, rows: (s, e) => ({ inputIds: copy.ids.slice(s * seq, e * seq), attentionMask: copy.mask.slice(s * seq, e * seq), shape: [e - s, seq] }) };
}
