/**
 * A small pool of worker threads that decode, resize and normalise image files straight into a shared
 * float32 batch buffer (each image at its own offset), so a batch costs no per-image copies or messages
 * with pixels, and the calling thread stays free (e.g. for the training step) while the batch is built.
 * Workers hold reusable decode/resize buffers, which is most of the speed: fresh buffers page-fault.
 * Idle workers are unref'd, so the pool never keeps the process alive.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DataError } from '@clip-ts/core';
import type { ImageProcessorOptions } from './image-processor.js';

/** main → worker: decode `path` into `buffer` (float32 view) at float offset `offset`. */
export interface ImageJob {
  id: number;
  path: string;
  buffer: SharedArrayBuffer;
  offset: number;
}

/** worker → main. */
export type ImageJobReply = { id: number; ok: true } | { id: number; ok: false; message: string };

function workerUrl(): URL {
  // From dist: the sibling .js. From source (vitest), the build's copy: worker_threads cannot run .ts.
  const here = new URL('./image-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../dist/image-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new DataError(`the image worker script is missing (${fileURLToPath(built)}): run npm run build`);
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

export class ImageWorkerPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void; slot: Slot }>();
  private closed = false;
  /** Batches in flight (loaders prefetch, so runs overlap): workers stay ref'd while any is. */
  private active = 0;

  /** True once closed or after a worker died: the processor then starts a new pool. */
  get isClosed(): boolean {
    return this.closed;
  }

  constructor(options: Readonly<ImageProcessorOptions>, size: number) {
    this.size = size;
    const url = workerUrl();
    for (let i = 0; i < size; i++) {
      // execArgv []: the parent's flags (e.g. --input-type, --eval) are not for a worker running a file.
      const worker = new Worker(url, { workerData: { options: { ...options } }, execArgv: [] });
      worker.unref();
      const slot: Slot = { worker, busy: false };
      worker.on('message', (m: ImageJobReply) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve();
        else p.reject(new DataError(m.message));
      });
      // A worker that dies fails its own job (and the pool: later jobs would wait for it forever).
      const die = (why: string) => {
        for (const [id, p] of this.pending) {
          if (p.slot === slot) {
            this.pending.delete(id);
            p.reject(new DataError(`image worker ${i} ${why}`));
          }
        }
        this.closed = true;
      };
      worker.on('error', (err) => die(`failed: ${err.message}`));
      worker.on('exit', (code) => die(`exited with code ${code}`));
      this.slots.push(slot);
    }
  }

  /**
   * Every path into `out` (float32 view of a SharedArrayBuffer) at i * `per`. Rejects with the first
   * DataError, but only once no job is still writing into `out`, so the caller may reuse it at once.
   */
  async run(paths: readonly string[], out: Float32Array, per: number): Promise<void> {
    if (this.closed) throw new DataError('image worker pool is closed');
    const buffer = out.buffer as SharedArrayBuffer;
    let next = 0;
    let first: Error | undefined;
    if (this.active++ === 0) for (const s of this.slots) s.worker.ref(); // a pending batch keeps the process alive
    try {
      const lane = async (slot: Slot): Promise<void> => {
        while (next < paths.length && first === undefined) {
          const i = next++;
          const id = this.nextId++;
          const job: ImageJob = { id, path: paths[i] as string, buffer, offset: out.byteOffset / 4 + i * per };
          try {
            await new Promise<void>((resolve, reject) => {
              this.pending.set(id, { resolve, reject, slot });
              slot.worker.postMessage(job);
            });
          } catch (err) {
            first ??= err as Error;
          }
        }
      };
      await Promise.all(this.slots.map(lane));
    } finally {
      if (--this.active === 0) for (const s of this.slots) s.worker.unref();
    }
    if (first) throw first;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
