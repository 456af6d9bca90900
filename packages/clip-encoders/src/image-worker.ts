/**
 * Worker-thread side of ImageWorkerPool: one ClipImageProcessor per worker (its decode and resize
 * buffers are reused across jobs), writing each image into the shared batch buffer at its offset.
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { DataError } from '@clip-ts/core';
import { ClipImageProcessor } from './image-decode.js';
import type { ImageJob, ImageJobReply } from './image-pool.js';
import type { ImageProcessorOptions } from './image-processor.js';

const port = parentPort;
if (!port) throw new Error('image-worker.js runs as a worker thread of ImageWorkerPool');
const processor = new ClipImageProcessor((workerData as { options: ImageProcessorOptions }).options);

port.on('message', (job: ImageJob) => {
  const out = new Float32Array(job.buffer);
  // A blocking read: this thread has nothing else to do, and fs/promises' readFile costs ~1 ms more per file.
  let bytes: Buffer;
  try {
    bytes = readFileSync(job.path);
  } catch (err) {
    port.postMessage({ id: job.id, ok: false, message: new DataError(`cannot read image ${job.path}: ${(err as Error).message}`).message } satisfies ImageJobReply);
    return;
  }
  processor.processBufferInto(bytes, job.path, out, job.offset).then(
    () => port.postMessage({ id: job.id, ok: true } satisfies ImageJobReply),
    (err: unknown) => port.postMessage({ id: job.id, ok: false, message: err instanceof Error ? err.message : String(err) } satisfies ImageJobReply),
  );
});
