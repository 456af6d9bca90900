import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, gelu, initBackend, layerNorm, linear } from '../src/index.js';

// The ops carry hand-written gradients; the reference is tfjs autodiff of the naive formulation.
// Tolerance: |got − want| ≤ TOL · max(1, max|want|) per tensor (both float32).
const TOL = 1e-5;

function closeTo(got: tf.Tensor, want: tf.Tensor, what: string): void {
  expect(got.shape, what).toEqual(want.shape);
  const g = got.dataSync();
  const w = want.dataSync();
  let scale = 1;
  let worst = 0;
  for (let i = 0; i < w.length; i++) {
    scale = Math.max(scale, Math.abs(w[i] as number));
    worst = Math.max(worst, Math.abs((g[i] as number) - (w[i] as number)));
  }
  expect(worst / scale, `${what}: max abs error ${worst}`).toBeLessThanOrEqual(TOL);
}

function randn(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rng.next() * 2 - 1) * scale;
  return tf.tensor(data, shape);
}

const naiveLinear = (x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor => {
  const y = tf.matMul(tf.reshape(x, [-1, w.shape[0]]), w);
  return tf.reshape(b ? tf.add(y, b) : y, [...x.shape.slice(0, -1), w.shape[1]]);
};
const naiveLayerNorm = (x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor => {
  const { mean, variance } = tf.moments(x, x.rank - 1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), g), b);
};
const naiveGelu = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));

/** Values and gradients (w.r.t. every input, under a random upstream gradient) of fast vs naive. */
function compare(
  what: string,
  inputs: tf.Tensor[],
  fast: (...t: tf.Tensor[]) => tf.Tensor,
  naive: (...t: tf.Tensor[]) => tf.Tensor,
  rng: Rng,
): void {
  tf.tidy(() => {
    const want = naive(...inputs);
    closeTo(fast(...inputs), want, `${what} value`);
    const dy = randn(rng, want.shape);
    const gFast = tf.grads((...t: tf.Tensor[]) => fast(...t))(inputs, dy);
    const gNaive = tf.grads((...t: tf.Tensor[]) => naive(...t))(inputs, dy);
    gNaive.forEach((g, i) => closeTo(gFast[i] as tf.Tensor, g, `${what} grad ${i}`));
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`ops on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });

    it('linear with and without bias, rank 2 and 3, both transpose strategies', () => {
      const rng = new Rng(1);
      // [in, out] = [6, 10] transposes x for dW; [10, 6] transposes dy and the product.
      for (const [inDim, outDim] of [[6, 10], [10, 6]] as const) {
        for (const shape of [[5, inDim], [2, 7, inDim]]) {
          const x = randn(rng, shape);
          const w = randn(rng, [inDim, outDim]) as tf.Tensor2D;
          const b = randn(rng, [outDim]) as tf.Tensor1D;
          compare(`linear ${shape}→${outDim} +b`, [x, w, b], (x, w, b) => linear(x!, w as tf.Tensor2D, b as tf.Tensor1D),
            (x, w, b) => naiveLinear(x!, w as tf.Tensor2D, b as tf.Tensor1D), rng);
          compare(`linear ${shape}→${outDim}`, [x, w], (x, w) => linear(x!, w as tf.Tensor2D),
            (x, w) => naiveLinear(x!, w as tf.Tensor2D), rng);
          tf.dispose([x, w, b]);
        }
      }
    });

    it('layerNorm over the last axis (eps 1e-12 and 1e-5), rank 2 and 3', () => {
      const rng = new Rng(2);
      for (const eps of [1e-12, 1e-5]) {
        for (const shape of [[4, 16], [2, 5, 32]]) {
          const d = shape[shape.length - 1] as number;
          // An offset and scale per row, as real activations have, so centring matters.
          const x = tf.add(randn(rng, shape, 3), 1.5);
          const g = randn(rng, [d]) as tf.Tensor1D;
          const b = randn(rng, [d]) as tf.Tensor1D;
          compare(`layerNorm ${shape} eps ${eps}`, [x, g, b],
            (x, g, b) => layerNorm(x!, g as tf.Tensor1D, b as tf.Tensor1D, eps),
            (x, g, b) => naiveLayerNorm(x!, g as tf.Tensor1D, b as tf.Tensor1D, eps), rng);
          tf.dispose([x, g, b]);
        }
      }
    });

    it('gelu (exact erf form), including large |x|', () => {
      const rng = new Rng(3);
      const edges = tf.tile(tf.tensor2d([[-12, -6, -1e-3, 0, 1e-3, 6, 12, 0.5]]), [3, 5]);
      const x = tf.concat([randn(rng, [3, 40], 4), edges], 1);
      compare('gelu', [x], (x) => gelu(x!), (x) => naiveGelu(x!), rng);
      tf.dispose([x, edges]);
    });

    it('gradients reach tf.Variables through tf.variableGrads', () => {
      const rng = new Rng(4);
      const x = randn(rng, [3, 4, 8]);
      const kernel = tf.variable(randn(rng, [8, 6]), true, `k_${backend}`);
      const bias = tf.variable(randn(rng, [6]), true, `b_${backend}`);
      const gamma = tf.variable(randn(rng, [6]), true, `g_${backend}`);
      const beta = tf.variable(randn(rng, [6]), true, `be_${backend}`);
      const vars = [kernel, bias, gamma, beta];
      const loss = (
        lin: typeof linear, ln: typeof layerNorm, act: typeof gelu,
      ) => () => tf.sum(tf.square(act(ln(lin(x, kernel as tf.Variable<tf.Rank.R2>, bias as tf.Variable<tf.Rank.R1>),
        gamma as tf.Variable<tf.Rank.R1>, beta as tf.Variable<tf.Rank.R1>, 1e-12)))) as tf.Scalar;
      const fast = tf.variableGrads(loss(linear, layerNorm, gelu), vars);
      const naive = tf.variableGrads(loss(naiveLinear, naiveLayerNorm, naiveGelu), vars);
      closeTo(fast.value, naive.value, 'loss');
      for (const v of vars) {
        expect(fast.grads[v.name], v.name).toBeDefined();
        closeTo(fast.grads[v.name] as tf.Tensor, naive.grads[v.name] as tf.Tensor, `d ${v.name}`);
      }
      tf.dispose([fast.value, naive.value, ...Object.values(fast.grads), ...Object.values(naive.grads), x, ...vars]);
    });

    it('leaves no tensors behind in forward, grads and inference', () => {
      const rng = new Rng(5);
      const x = randn(rng, [2, 3, 8]);
      const w = tf.variable(randn(rng, [8, 8])) as tf.Variable<tf.Rank.R2>;
      const b = tf.variable(randn(rng, [8])) as tf.Variable<tf.Rank.R1>;
      const f = (x: tf.Tensor) => gelu(layerNorm(linear(x, w, b), b, b, 1e-5));
      tf.dispose(tf.tidy(() => f(x))); // warm-up (kernel setup may allocate once)
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        tf.dispose(tf.tidy(() => f(x)));
        tf.dispose(tf.grads((x: tf.Tensor) => f(x))([x]));
        const { value, grads } = tf.variableGrads(() => tf.sum(f(x)) as tf.Scalar, [w, b]);
        tf.dispose([value, ...Object.values(grads)]);
      }
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, w, b]);
    });
  });
}

describe('wasm kernel replacements (BatchMatMul, Slice) agree with cpu', () => {
  const rng = new Rng(6);
  const cases: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [];
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      cases.push({ a: ta ? [6, 5] : [5, 6], b: tb ? [7, 6] : [6, 7], ta, tb }); // 2-D
      cases.push({ a: ta ? [2, 3, 6, 5] : [2, 3, 5, 6], b: tb ? [2, 3, 7, 6] : [2, 3, 6, 7], ta, tb }); // batched
      cases.push({ a: ta ? [4, 6, 5] : [4, 5, 6], b: tb ? [1, 7, 6] : [1, 6, 7], ta, tb }); // shared b
      cases.push({ a: ta ? [1, 6, 5] : [1, 5, 6], b: tb ? [4, 7, 6] : [4, 6, 7], ta, tb }); // shared a
      cases.push({ a: ta ? [2, 3, 6, 5] : [2, 3, 5, 6], b: tb ? [7, 6] : [6, 7], ta, tb }); // rank-2 b
      cases.push({ a: ta ? [6, 5] : [5, 6], b: tb ? [3, 7, 6] : [3, 6, 7], ta, tb }); // rank-2 a
      // Odd sizes on every axis, large enough that XNNPACK tiles with remainders (mr, nr, k not multiples).
      cases.push({ a: ta ? [3, 37, 19] : [3, 19, 37], b: tb ? [3, 23, 37] : [3, 37, 23], ta, tb });
      cases.push({ a: ta ? [129, 67] : [67, 129], b: tb ? [33, 129] : [129, 33], ta, tb }); // 2-D, odd
      // Larger odd entries (several XNNPACK tiles per entry), also with a left operand shared by the batch.
      cases.push({ a: ta ? [2, 131, 97] : [2, 97, 131], b: tb ? [2, 61, 131] : [2, 131, 61], ta, tb });
      cases.push({ a: ta ? [1, 131, 61] : [1, 61, 131], b: tb ? [3, 97, 131] : [3, 131, 97], ta, tb }); // shared a
      cases.push({ a: ta ? [2, 1, 9] : [2, 9, 1], b: tb ? [2, 5, 1] : [2, 1, 5], ta, tb }); // k = 1 (outer product)
      cases.push({ a: ta ? [4, 7, 1] : [4, 1, 7], b: tb ? [4, 1, 7] : [4, 7, 1], ta, tb }); // m = n = 1 (dot products)
      cases.push({ a: ta ? [2, 3, 6, 5] : [2, 3, 5, 6], b: tb ? [3, 7, 6] : [3, 6, 7], ta, tb }); // broadcast [2,3] vs [3]
      cases.push({ a: ta ? [2, 3, 6, 5] : [2, 3, 5, 6], b: tb ? [1, 7, 6] : [1, 6, 7], ta, tb }); // broadcast [2,3] vs [1]
      // (Broadcasting both ways, [1,3]·[2,1], is left out: tfjs 4.22 itself returns 105 values for [2,3,5,7] on cpu.)
    }
  }
  const data = cases.map((c) => ({
    ...c,
    av: Array.from({ length: c.a.reduce((x, y) => x * y, 1) }, () => rng.next() * 2 - 1),
    bv: Array.from({ length: c.b.reduce((x, y) => x * y, 1) }, () => rng.next() * 2 - 1),
  }));
  const x = Array.from({ length: 3 * 5 * 4 * 6 }, (_, i) => i);
  const slices: Array<[number[], number[], number[]]> = [
    [[3, 5, 4, 6], [1, 2, 0, 1], [2, 3, 4, 4]],
    [[3, 5, 24], [2, 0, 0], [1, 5, 24]], // contiguous
    [[15, 24], [3, 5], [7, 2]],
    [[3, 5, 24], [0, 1, 3], [3, -1, 10]],
    [[360], [17], [100]],
  ];
  const run = async (backend: 'cpu' | 'wasm') => {
    await initBackend(backend);
    return tf.tidy(() => ({
      mm: data.map((c) => tf.matMul(tf.tensor(c.av, c.a), tf.tensor(c.bv, c.b), c.ta, c.tb).arraySync()),
      sl: slices.map(([shape, begin, size]) => tf.slice(tf.tensor(x, shape, 'int32'), begin, size).arraySync()),
      slf: slices.map(([shape, begin, size]) => tf.slice(tf.tensor(x, shape), begin, size).arraySync()),
    }));
  };

  it('on every transpose combination, batch layout and slice shape', async () => {
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    cases.forEach((c, i) => {
      const got = (wasm.mm[i] as number[]).flat(3) as number[];
      const want = (cpu.mm[i] as number[]).flat(3) as number[];
      expect(got.length).toBe(want.length);
      // Sums of up to 131 products of values in [-1, 1]: float32 summation order differs between kernels.
      got.forEach((v, j) => expect(Math.abs(v - (want[j] as number)), `case ${JSON.stringify(c)}[${j}]`).toBeLessThan(2e-5));
    });
    expect(wasm.sl).toEqual(cpu.sl);
    expect(wasm.slf).toEqual(cpu.slf);
  });
});
