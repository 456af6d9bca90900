import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@clip-ts/core';

type Pad = 'valid' | 'same' | number;

// [2, 10, 9, 4] with pool 3/2 pad 1 (a ResNet stem's pool) is where stock wasm's MaxPoolGrad was off by ~1.
const CASES: Array<{ shape: [number, number, number, number]; k: number | [number, number]; s: number | [number, number]; pad: Pad }> = [
  { shape: [2, 10, 9, 4], k: 3, s: 2, pad: 1 },
  { shape: [3, 7, 8, 2], k: 3, s: 2, pad: 1 },
  { shape: [1, 6, 6, 3], k: 2, s: 2, pad: 'valid' },
  { shape: [2, 5, 7, 1], k: [3, 2], s: [1, 2], pad: 'same' },
  { shape: [1, 9, 9, 5], k: 3, s: 3, pad: 'valid' },
];

async function poolGrad(backend: 'cpu' | 'wasm', c: (typeof CASES)[number], ties = false): Promise<Float32Array> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const n = c.shape.reduce((a, b) => a * b, 1);
  const g = tf.tidy(() => {
    // With ties (values rounded to a coarse grid) the first maximum of a window must win, as on cpu.
    const x = tf.tensor4d(Array.from({ length: n }, (_, i) => (ties ? Math.round(Math.sin(i * 0.7) * 2) : Math.sin(i * 0.7))), c.shape);
    return tf.grad((t: tf.Tensor) => {
      const y = tf.maxPool(t as tf.Tensor4D, c.k, c.s, c.pad);
      return tf.sum(tf.mul(y, tf.cos(tf.reshape(tf.range(0, y.size), y.shape))));
    })(x);
  });
  const out = new Float32Array(g.dataSync());
  g.dispose();
  expect(tf.memory().numTensors).toBe(before);
  return out;
}

describe('MaxPoolGrad on wasm', () => {
  for (const ties of [false, true]) {
    it.each(CASES)(`$shape pool $k stride $s pad $pad${ties ? ' (tied values)' : ''}: equals cpu`, async (c) => {
      const cpu = await poolGrad('cpu', c, ties);
      const wasm = await poolGrad('wasm', c, ties);
      expect(cpu.some((v) => v !== 0)).toBe(true);
      for (let i = 0; i < cpu.length; i++) expect(Math.abs(cpu[i]! - wasm[i]!), `element ${i}`).toBeLessThan(1e-6);
    });
  }
});
