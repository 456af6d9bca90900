import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@clip-ts/core';

/** Runs `f` on a backend and returns its outputs as plain arrays. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const outs = tf.tidy(f);
  const values = outs.map((t) => new Float32Array(t.dataSync()));
  tf.dispose(outs);
  expect(tf.memory().numTensors).toBe(before);
  return values;
}

describe('UnsortedSegmentSum on wasm (gradient of gather)', () => {
  it('wasm has the kernel after initBackend', async () => {
    await initBackend('wasm');
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it('sums rows by id, drops out-of-range ids, matches cpu', async () => {
    const run = () => [
      tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]), tf.tensor1d([2, 0, 2, 1], 'int32'), 4),
      tf.unsortedSegmentSum(tf.tensor1d([1, 10, 100]), tf.tensor1d([1, 5, 1], 'int32'), 3),
    ];
    const wasm = await on('wasm', run);
    const cpu = await on('cpu', run);
    expect(Array.from(wasm[0]!)).toEqual([3, 4, 7, 8, 6, 8, 0, 0]);
    expect(Array.from(wasm[1]!)).toEqual([0, 101, 0]);
    expect(wasm).toEqual(cpu);
  });

  it('gradient of an embedding lookup (2-D ids, repeated ids) equals cpu', async () => {
    const table = Array.from({ length: 7 * 3 }, (_, i) => Math.sin(i));
    const run = () => {
      const t = tf.tensor2d(table, [7, 3]);
      const ids = tf.tensor2d([[1, 4, 1], [6, 0, 1]], [2, 3], 'int32');
      const weight = tf.tensor3d(Array.from({ length: 18 }, (_, i) => i - 4), [2, 3, 3]);
      const g = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.gather(w, ids), weight)))(t);
      return [g];
    };
    const wasm = await on('wasm', run);
    const cpu = await on('cpu', run);
    // Row 1 is looked up three times: its gradient is the sum of three weight rows.
    expect(Array.from(wasm[0]!.slice(3, 6))).toEqual([-4 + 2 + 11, -3 + 3 + 12, -2 + 4 + 13]);
    expect(wasm).toEqual(cpu);
  });
});
