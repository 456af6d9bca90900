import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@clip-ts/core';
import { im2colLimits } from '../src/kernels/conv2d-backprop-filter.js';

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

interface Case {
  name: string;
  x: [number, number, number, number];
  k: [number, number];
  co: number;
  stride: number | [number, number];
  pad: Pad;
}

// Odd sizes, asymmetric explicit padding and strides that do not divide the input: each misplaces a patch
// if the padding offset, output size or stride is wrong.
const CASES: Case[] = [
  { name: '1×1 stride 1 valid', x: [2, 5, 5, 3], k: [1, 1], co: 4, stride: 1, pad: 'valid' },
  { name: '1×1 stride 2 valid (a shortcut)', x: [2, 7, 9, 4], k: [1, 1], co: 6, stride: 2, pad: 'valid' },
  { name: '3×3 stride 1 same', x: [3, 6, 5, 2], k: [3, 3], co: 5, stride: 1, pad: 'same' },
  { name: '3×3 stride 2 same on odd sizes', x: [2, 9, 7, 3], k: [3, 3], co: 4, stride: 2, pad: 'same' },
  { name: '3×3 stride 2 explicit pad 1', x: [2, 11, 10, 2], k: [3, 3], co: 3, stride: 2, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
  { name: '7×7 stride 2 explicit pad 3 (the stem)', x: [2, 23, 21, 3], k: [7, 7], co: 5, stride: 2, pad: [[0, 0], [3, 3], [3, 3], [0, 0]] },
  { name: '3×2 kernel, strides [2, 3], asymmetric explicit pad', x: [1, 10, 13, 2], k: [3, 2], co: 3, stride: [2, 3], pad: [[0, 0], [2, 0], [0, 1], [0, 0]] },
  { name: '5×5 valid, stride 3', x: [4, 13, 14, 3], k: [5, 5], co: 2, stride: 3, pad: 'valid' },
];

const values = (n: number, phase: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + phase) + 0.1 * Math.cos(i * 1.3));

/** d(sum(conv(x, w) · weights))/dw on `backend`, and the tensor count after (a leak check). */
async function filterGrad(backend: 'cpu' | 'wasm', c: Case): Promise<Float32Array> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const g = tf.tidy(() => {
    const x = tf.tensor4d(values(c.x.reduce((a, b) => a * b, 1), 0.3), c.x);
    const w = tf.tensor4d(values(c.k[0] * c.k[1] * c.x[3] * c.co, 1.1), [c.k[0], c.k[1], c.x[3], c.co]);
    const f = (ww: tf.Tensor): tf.Scalar => {
      const y = tf.conv2d(x, ww as tf.Tensor4D, c.stride, c.pad);
      return tf.sum(tf.mul(y, tf.tensor(values(y.size, 2.2), y.shape)));
    };
    return tf.grad(f)(w);
  });
  const out = new Float32Array(g.dataSync());
  g.dispose();
  expect(tf.memory().numTensors).toBe(before);
  return out;
}

describe('Conv2DBackpropFilter on wasm (gradient of a convolution’s weights)', () => {
  it('wasm has the kernel after initBackend', async () => {
    await initBackend('wasm');
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
  });

  it.each(CASES)('$name: equals the cpu backend’s gradient', async (c) => {
    const cpu = await filterGrad('cpu', c);
    const wasm = await filterGrad('wasm', c);
    expect(wasm.length).toBe(cpu.length);
    let max = 0;
    let scale = 0;
    for (let i = 0; i < cpu.length; i++) {
      max = Math.max(max, Math.abs(cpu[i]! - wasm[i]!));
      scale = Math.max(scale, Math.abs(cpu[i]!));
    }
    expect(scale).toBeGreaterThan(0.1);
    expect(max).toBeLessThan(1e-4 * Math.max(1, scale));
  });

  it('summing over several patch chunks (2 + 1 images, 1 + 1 + 1) gives cpu’s gradient', async () => {
    // 3×3 stride 2 'same' on 9×7×3: 5·4 patches × 27 floats = 540 floats per image.
    const c: Case = { ...CASES[3]!, x: [3, 9, 7, 3] };
    const ref = await filterGrad('cpu', c);
    const saved = im2colLimits.maxFloats;
    try {
      for (const maxFloats of [1100, 1]) {
        im2colLimits.maxFloats = maxFloats;
        const chunked = await filterGrad('wasm', c);
        for (let i = 0; i < ref.length; i++) expect(Math.abs(chunked[i]! - ref[i]!)).toBeLessThan(1e-4);
      }
    } finally {
      im2colLimits.maxFloats = saved;
    }
  });
});
