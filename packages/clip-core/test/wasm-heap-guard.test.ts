import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend, OutOfMemoryError } from '../src/index.js';

interface Heap {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

describe.each([1, 2])('wasm heap exhausted, %i thread(s)', (threads) => {
  it('a tensor that does not fit is an OutOfMemoryError naming its size; existing tensors stay intact and the backend keeps working', async () => {
    await initBackend('wasm', { threads });
    const heap = (tf.backend() as unknown as { wasm: Heap }).wasm;
    const before = tf.memory().numTensors;
    const kept = tf.tensor1d([1, 2, 3, 4]);
    // One raw block fills most of the 4 GB address space without touching (faulting in) its pages. Unguarded,
    // the allocator answers the requests below with 0 (1e9) or with a block that runs off the end of memory
    // (1.2e9: its size arithmetic wraps past 4 GB), and tfjs writes the tensor there.
    const block = heap._malloc(3.5e9);
    expect(block).not.toBe(0);
    try {
      for (const values of [250e6, 300e6, 500e6]) {
        let caught: unknown;
        try {
          // A kernel's output (no values made in JS first): the allocation is the first thing that happens.
          tf.tidy(() => tf.add(tf.fill([values], 1), 1));
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(OutOfMemoryError);
        expect((caught as OutOfMemoryError).code).toBe('MEMORY');
        expect((caught as OutOfMemoryError).requestedBytes).toBe(4 * values);
        expect((caught as Error).message).toContain(`out of memory allocating ${((4 * values) / 2 ** 20).toFixed(1)} MiB`);
      }
    } finally {
      heap._free(block);
    }
    expect(Array.from(kept.dataSync())).toEqual([1, 2, 3, 4]);
    const sum = tf.tidy(() => tf.sum(tf.matMul(tf.ones([64, 32]), tf.ones([32, 16]))));
    expect(sum.dataSync()[0]).toBe(64 * 16 * 32);
    sum.dispose();
    kept.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
