import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addInPlace, fusedAdamUpdate, fusedUpdatesSupported, initBackend, type AdamCoefficients } from '../src/index.js';

type Variant = 'plain' | 'l2' | 'decoupled';

/** Step t's coefficients for lr 1e-3, wd 0.05, PyTorch's defaults otherwise. */
function coefficients(variant: Variant, t: number, lr = 1e-3, wd = 0.05): AdamCoefficients {
  const [beta1, beta2] = [0.9, 0.999];
  return {
    beta1,
    oneMinusBeta1: 1 - beta1,
    beta2,
    oneMinusBeta2: 1 - beta2,
    bc2Sqrt: Math.sqrt(1 - beta2 ** t),
    eps: 1e-8,
    stepSize: lr / (1 - beta1 ** t),
    l2: variant === 'l2' ? wd : 0,
    decay: variant === 'decoupled' ? 1 - lr * wd : 1,
  };
}

/** The tensor path, op for op as AdamOptimizer.applyGradients runs it. */
function tensorUpdate(w: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable, c: AdamCoefficients): void {
  tf.tidy(() => {
    let grad = g;
    if (c.l2 !== 0) grad = tf.add(grad, tf.mul(w, c.l2));
    const mNew = tf.add(tf.mul(m, c.beta1), tf.mul(grad, c.oneMinusBeta1));
    const vNew = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(grad), c.oneMinusBeta2));
    const denom = tf.add(tf.div(tf.sqrt(vNew), c.bc2Sqrt), c.eps);
    let param: tf.Tensor = w;
    if (c.decay !== 1) param = tf.mul(param, c.decay);
    param = tf.sub(param, tf.mul(tf.div(mNew, denom), c.stepSize));
    m.assign(mNew);
    v.assign(vNew);
    w.assign(param);
  });
}

interface Run {
  w: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** `steps` updates of a [size] weight from seeded values; `fused` picks the path. Copies the results out. */
function run(size: number, variant: Variant, steps: number, seed: number, fused: boolean): Run {
  // Made inside tidy so the initial values are disposed and each variable is its storage's only holder.
  const [w, m, v] = tf.tidy(() => [tf.variable(tf.randomNormal([size], 0, 1, 'float32', seed)), tf.variable(tf.zeros([size])), tf.variable(tf.zeros([size]))]);
  for (let t = 1; t <= steps; t++) {
    // Gradients of mixed scales, so sqrt(v) and the decay terms are not all alike.
    const g = tf.tidy(() => tf.mul(tf.randomNormal([size], 0, 1, 'float32', seed + t), tf.randomUniform([size], 1e-4, 3, 'float32', seed + 100 + t)));
    const c = coefficients(variant, t);
    if (fused) expect(fusedAdamUpdate({ param: w, grad: g, m, v }, c)).toBe(true);
    else tensorUpdate(w, g, m, v, c);
    g.dispose();
  }
  const out = { w: w.dataSync().slice() as Float32Array, m: m.dataSync().slice() as Float32Array, v: v.dataSync().slice() as Float32Array };
  tf.dispose([w, m, v]);
  return out;
}

const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const sizes = [1, 3, 4, 5, 17, 64, ...fc.sample(fc.integer({ min: 1, max: 3000 }), { numRuns: 8, seed: 7 })];
const SETUPS = [
  { name: 'cpu', init: () => initBackend('cpu') },
  { name: 'wasm, 1 thread', init: () => initBackend('wasm', { threads: 1 }) },
  { name: 'wasm, 2 threads', init: () => initBackend('wasm', { threads: 2 }) },
] as const;

describe('fused Adam update and in-place add', () => {
  it('the committed module bytes are what scripts/adam-wasm.mjs generates from its text', async () => {
    const script = await import('../scripts/adam-wasm.mjs');
    const committed = await readFile(new URL('../src/kernels/adam-wasm-bytes.ts', import.meta.url), 'utf8');
    expect(committed).toBe(await script.generated());
  });

  for (const setup of SETUPS) {
    it(`${setup.name}: bit-identical to the tensor ops (plain, L2, decoupled decay; odd sizes; 4 steps), no tensors made`, async () => {
      await setup.init();
      expect(fusedUpdatesSupported()).toBe(true);
      for (const variant of ['plain', 'l2', 'decoupled'] as const) {
        sizes.forEach((size, i) => {
          const ref = run(size, variant, 4, 10 * i + 1, false);
          const before = tf.memory().numTensors;
          const got = run(size, variant, 4, 10 * i + 1, true);
          expect(tf.memory().numTensors, 'tensors left').toBe(before);
          const what = `${variant}, size ${size}`;
          expect(bits(got.w), `${what}: weights`).toEqual(bits(ref.w));
          expect(bits(got.m), `${what}: exp_avg`).toEqual(bits(ref.m));
          expect(bits(got.v), `${what}: exp_avg_sq`).toEqual(bits(ref.v));
        });
      }
    });

    it(`${setup.name}: refuses storage another tensor shares; a clone or slice taken before keeps its value; writes nothing else`, async () => {
      await setup.init();
      const [w, m, v] = tf.tidy(() => [tf.variable(tf.tensor1d([1, 2, 3, 4, 5])), tf.variable(tf.zeros([5])), tf.variable(tf.zeros([5]))]);
      const g = tf.tensor1d([0.5, -0.5, 1, -1, 2]);
      const guard = tf.fill([64], 7);
      // A reshape shares the dataId on both backends: refused, nothing written.
      const flat = tf.reshape(w, [5, 1]);
      expect(fusedAdamUpdate({ param: w, grad: g, m, v }, coefficients('plain', 1))).toBe(false);
      expect(Array.from(w.dataSync())).toEqual([1, 2, 3, 4, 5]);
      flat.dispose();
      const mView = tf.reshape(m, [1, 5]);
      expect(fusedAdamUpdate({ param: w, grad: g, m, v }, coefficients('plain', 1))).toBe(false);
      mView.dispose();
      // A clone (the same dataId on cpu, a copy on wasm) keeps the value it had.
      const clone = tf.clone(w);
      fusedAdamUpdate({ param: w, grad: g, m, v }, coefficients('plain', 1));
      expect(Array.from(clone.dataSync())).toEqual([1, 2, 3, 4, 5]);
      clone.dispose();
      const reset = tf.tensor1d([1, 2, 3, 4, 5]);
      w.assign(reset);
      reset.dispose();
      // A slice (on cpu a view of the weight's array under another dataId) keeps its value too.
      const head = tf.slice(w, [0], [2]);
      expect(fusedAdamUpdate({ param: w, grad: g, m, v }, coefficients('plain', 1))).toBe(true);
      expect(Array.from(head.dataSync())).toEqual([1, 2]);
      expect(Array.from(g.dataSync())).toEqual([0.5, -0.5, 1, -1, 2]);
      expect(Array.from(guard.dataSync())).toEqual(new Array(64).fill(7));
      expect(Array.from(w.dataSync()).every((x, i) => x !== i + 1)).toBe(true);
      tf.dispose([w, m, v, g, guard, head]);
    });

    it(`${setup.name}: a product with the weight after an update sees the new values (wasm's XNNPACK keeps a packed copy of a weight by its tensor id)`, async () => {
      await setup.init();
      const [w, m, v] = tf.tidy(() => [tf.variable(tf.randomNormal([16, 8], 0, 1, 'float32', 3)), tf.variable(tf.zeros([16, 8])), tf.variable(tf.zeros([16, 8]))]);
      const x = tf.randomNormal([4, 16], 0, 1, 'float32', 4);
      const g = tf.randomNormal([16, 8], 0, 1, 'float32', 5);
      for (let t = 1; t <= 3; t++) {
        tf.matMul(x, w).dispose(); // packs w where the backend caches packed weights
        expect(fusedAdamUpdate({ param: w, grad: g, m, v }, coefficients('decoupled', t))).toBe(true);
        const got = tf.matMul(x, w);
        const fresh = tf.tensor(w.dataSync().slice(), w.shape);
        const want = tf.matMul(x, fresh);
        expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
        tf.dispose([got, fresh, want]);
      }
      tf.dispose([w, m, v, x, g]);
    });

    it(`${setup.name}: addInPlace equals tf.add bit for bit and refuses shared storage`, async () => {
      await setup.init();
      for (const [i, size] of sizes.entries()) {
        const a = tf.randomNormal([size], 0, 1, 'float32', i + 1);
        const b = tf.randomNormal([size], 0, 1e-3, 'float32', i + 50);
        const want = tf.add(a, b);
        const before = tf.memory().numTensors;
        expect(addInPlace(a, b)).toBe(true);
        expect(tf.memory().numTensors).toBe(before);
        expect(bits(a.dataSync() as Float32Array)).toEqual(bits(want.dataSync() as Float32Array));
        tf.dispose([a, b, want]);
      }
      const a = tf.tensor1d([1, 2, 3]);
      const view = tf.reshape(a, [3, 1]);
      const b = tf.tensor1d([1, 1, 1]);
      expect(addInPlace(a, b)).toBe(false);
      expect(Array.from(view.dataSync())).toEqual([1, 2, 3]);
      view.dispose();
      // On cpu a sliced tensor is a view of its source's array: the add copies it first, the source keeps its values.
      const src = tf.tensor1d([1, 2, 3, 4]);
      const part = tf.slice(src, [1], [3]);
      expect(addInPlace(part, b)).toBe(true);
      expect(Array.from(part.dataSync())).toEqual([3, 4, 5]);
      expect(Array.from(src.dataSync())).toEqual([1, 2, 3, 4]);
      tf.dispose([a, b, src, part]);
    });
  }

  it('dtypes and sizes that do not match are refused', async () => {
    await initBackend('cpu');
    const a = tf.tensor1d([1, 2, 3]);
    const short = tf.tensor1d([1, 2], 'float32');
    const ints = tf.tensor1d([1, 2, 3], 'int32');
    expect(addInPlace(a, short)).toBe(false);
    expect(addInPlace(a, ints)).toBe(false);
    expect(Array.from(a.dataSync())).toEqual([1, 2, 3]);
    tf.dispose([a, short, ints]);
  });
});
