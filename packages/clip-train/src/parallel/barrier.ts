import { ParallelError } from './errors.js';

/**
 * Indices of the shared Int32 control block. The counters only grow: at pool step k every replica waits
 * for `EMBEDS ≥ N·(k+1)` (all shards' embeddings written) and main for `GRADS ≥ (N−1)·(k+1)` (all worker
 * gradients written), so no counter ever has to be reset between steps (a reset would race a fast replica).
 */
export const CTRL = { EMBEDS: 0, GRADS: 1, FAILED: 2, ABORT: 3, LENGTH: 4 } as const;
/** Bytes of the shared buffer carrying the first failure's message. */
export const ERROR_BYTES = 4096;

export interface SharedControl {
  ctrl: Int32Array;
  /** UTF-8 message of the first failure, NUL-padded. */
  error: Uint8Array;
}

export function newSharedControl(): SharedControl {
  return {
    ctrl: new Int32Array(new SharedArrayBuffer(CTRL.LENGTH * Int32Array.BYTES_PER_ELEMENT)),
    error: new Uint8Array(new SharedArrayBuffer(ERROR_BYTES)),
  };
}

/** Count one arrival at `index` and wake whoever waits on it. */
export function arrive(c: SharedControl, index: number): void {
  Atomics.add(c.ctrl, index, 1);
  Atomics.notify(c.ctrl, index);
}

/**
 * Record a failure (the first one wins) and wake every waiter, so no replica blocks on a barrier that can
 * no longer complete.
 */
export function fail(c: SharedControl, message: string): void {
  if (Atomics.compareExchange(c.ctrl, CTRL.FAILED, 0, 1) === 0) {
    const bytes = new TextEncoder().encode(message).subarray(0, ERROR_BYTES);
    c.error.set(bytes);
  }
  for (const i of [CTRL.EMBEDS, CTRL.GRADS]) Atomics.notify(c.ctrl, i);
}

export function failureMessage(c: SharedControl): string | undefined {
  if (Atomics.load(c.ctrl, CTRL.FAILED) === 0) return undefined;
  const end = c.error.indexOf(0);
  // TextDecoder refuses views on shared memory: copy first.
  return new TextDecoder().decode(c.error.slice(0, end < 0 ? ERROR_BYTES : end));
}

/**
 * Block (synchronously: the step runs inside tf.variableGrads) until the counter reaches `target`. Wakes
 * every 100 ms to notice a failure elsewhere; throws a ParallelError on failure or after `timeoutMs`.
 */
export function awaitCount(c: SharedControl, index: number, target: number, timeoutMs: number, what: string): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = Atomics.load(c.ctrl, index);
    if (seen >= target) return;
    const failed = failureMessage(c);
    if (failed !== undefined) throw new ParallelError(`data-parallel step failed: ${failed}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new ParallelError(`data-parallel step: timed out after ${timeoutMs} ms waiting for ${what} (a replica died or hangs)`);
    Atomics.wait(c.ctrl, index, seen, Math.min(left, 100));
  }
}
