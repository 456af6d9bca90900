import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GemmWorkerError, initBackend } from '../src/index.js';
import { closeGemmPool, gemmStats, setGemmThreading } from '../src/kernels/wasm-gemm.js';
import { setBatchedMatMulPath } from '../src/kernels/wasm.js';
import { injectGemmWorkerFault, liveGemmPools, setGemmShareTimeout } from '../src/platform/gemm-pool.js';
import { ROOT, ensureBuilt } from './helpers/ensure-built.js';

interface Case {
  a: number[];
  b: number[];
  ta: boolean;
  tb: boolean;
  seed: number;
}

/** A batched product's operand shapes: batch dims equal, or one side's batch 1 / absent (broadcast). */
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    outer: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 2 }),
    m: fc.integer({ min: 1, max: 41 }),
    k: fc.integer({ min: 1, max: 37 }),
    n: fc.integer({ min: 1, max: 43 }),
    ta: fc.boolean(),
    tb: fc.boolean(),
    broadcast: fc.constantFrom('none', 'a1', 'b1', 'a2d', 'b2d'),
    seed: fc.integer({ min: 0, max: 1e6 }),
  })
  .filter((c) => c.outer.reduce((x, y) => x * y, 1) > 1)
  .map(({ outer, m, k, n, ta, tb, broadcast, seed }) => {
    const matA = ta ? [k, m] : [m, k];
    const matB = tb ? [n, k] : [k, n];
    const ones = outer.map(() => 1);
    const outerA = broadcast === 'a1' ? ones : broadcast === 'a2d' ? [] : outer;
    const outerB = broadcast === 'b1' ? ones : broadcast === 'b2d' ? [] : outer;
    return { a: [...outerA, ...matA], b: [...outerB, ...matB], ta, tb, seed };
  });

/** Fixed cases: attention's shapes and tile edges (m around 4, n around 8, k = 1, long k). */
const FIXED: Case[] = [
  { a: [2, 3, 197, 64], b: [2, 3, 64, 197], ta: false, tb: false, seed: 1 },
  { a: [2, 3, 197, 64], b: [2, 3, 197, 197], ta: true, tb: false, seed: 2 },
  { a: [2, 3, 197, 197], b: [2, 3, 197, 64], ta: true, tb: false, seed: 3 },
  { a: [2, 3, 197, 197], b: [2, 3, 64, 197], ta: false, tb: true, seed: 4 },
  { a: [2, 3, 197, 64], b: [2, 3, 197, 64], ta: false, tb: true, seed: 5 },
  { a: [3, 64, 40], b: [3, 40, 64], ta: true, tb: true, seed: 6 },
  { a: [5, 4, 8], b: [5, 8, 8], ta: false, tb: false, seed: 7 },
  { a: [5, 3, 1], b: [5, 1, 7], ta: false, tb: false, seed: 8 },
  { a: [2, 9, 600], b: [2, 600, 17], ta: false, tb: false, seed: 9 },
  // Odd batches split unevenly over the pool; batch 1 takes the transpose + XNNPACK path, not the GEMM.
  { a: [3, 7, 5], b: [3, 5, 9], ta: false, tb: false, seed: 10 },
  { a: [7, 5, 7], b: [1, 11, 5], ta: true, tb: true, seed: 11 },
  { a: [1, 13, 6], b: [1, 9, 6], ta: false, tb: true, seed: 12 },
];

/** |got − want| ≤ rtol · max|want| (expectClose's rule, without spreading 10⁵ values into Math.max). */
function expectClose(got: Float32Array, want: Float32Array, what: string, rtol: number): void {
  expect(got.length, what).toBe(want.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i] as number));
    worst = Math.max(worst, Math.abs((got[i] as number) - (want[i] as number)));
  }
  expect(worst, `${what}: max abs error ${worst} vs scale ${scale}`).toBeLessThanOrEqual(rtol * scale);
}

/** Every case's product on the active backend, copied out (caller owns the arrays). */
function products(cases: Case[]): Float32Array[] {
  return cases.map((c) =>
    tf.tidy(() => {
      const a = tf.randomUniform(c.a, -1, 1, 'float32', c.seed);
      const b = tf.randomUniform(c.b, -1, 1, 'float32', c.seed + 1);
      return tf.matMul(a, b, c.ta, c.tb).dataSync() as Float32Array;
    }).slice(),
  );
}

const randomCases = fc.sample(caseArb, { numRuns: 60, seed: 12 });
const cases = [...FIXED, ...randomCases];

describe('wasm batched GEMM', () => {
  afterAll(() => setBatchedMatMulPath('gemm'));

  it('the committed module bytes are what scripts/gemm-wasm.mjs generates from its text', async () => {
    const script = await import('../scripts/gemm-wasm.mjs');
    const committed = await readFile(new URL('../src/kernels/gemm-wasm-bytes.ts', import.meta.url), 'utf8');
    expect(committed).toBe(await script.generated());
  });

  for (const threads of [1, 2]) {
    it(`on ${threads} wasm thread(s): equals the per-entry XNNPACK path and the cpu backend (random shapes, transposes, broadcast batch)`, async () => {
      await initBackend('cpu');
      const cpu = products(cases);
      const info = await initBackend('wasm', { threads });
      expect(info.threads).toBe(threads);
      setBatchedMatMulPath('xnnpack');
      const xnnpack = products(cases);
      setBatchedMatMulPath('gemm');
      const before = tf.memory().numTensors;
      const gemm = products(cases);
      expect(tf.memory().numTensors, 'leaked tensors').toBe(before);
      cases.forEach((c, i) => {
        const what = `${JSON.stringify(c)} on ${threads} thread(s)`;
        // Both sum each output over k in order with separate multiply and add (no FMA), like cpu's loop.
        expectClose(gemm[i] as Float32Array, xnnpack[i] as Float32Array, `${what}: gemm vs XNNPACK`, 1e-6);
        expectClose(gemm[i] as Float32Array, cpu[i] as Float32Array, `${what}: gemm vs cpu`, 1e-5);
      });
    });
  }

  it('a product whose inner sizes differ throws as the stock kernels do', async () => {
    await initBackend('wasm', { threads: 1 });
    const [a, b] = [tf.ones([2, 5, 4]), tf.ones([2, 5, 3])];
    expect(() => tf.matMul(a, b)).toThrow(/inner shapes \(4\) and \(5\)/);
    tf.dispose([a, b]);
  });

  it('writes only its output: operands and neighbouring tensors are unchanged', async () => {
    await initBackend('wasm', { threads: 1 });
    setBatchedMatMulPath('gemm');
    tf.tidy(() => {
      const a = tf.randomUniform([3, 13, 11], -1, 1, 'float32', 1);
      const b = tf.randomUniform([3, 17, 11], -1, 1, 'float32', 2);
      const guard = tf.fill([1000], 7);
      const [a0, b0] = [a.dataSync().slice(), b.dataSync().slice()];
      const out = tf.matMul(a, b, false, true);
      const later = tf.fill([1000], 3);
      expect(out.shape).toEqual([3, 13, 17]);
      expect(Array.from(a.dataSync())).toEqual(Array.from(a0));
      expect(Array.from(b.dataSync())).toEqual(Array.from(b0));
      expect(new Set(guard.dataSync())).toEqual(new Set([7]));
      expect(new Set(later.dataSync())).toEqual(new Set([3]));
    });
  });
});

/** Bit-for-bit equality (same kernel, same per-entry order: no tolerance). */
function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const first = a.findIndex((x, i) => x !== b[i]);
  expect(first, `${what}: first differing element`).toBe(-1);
}

/** Batched cases only: the ones our GEMM (and so the pool) runs. */
const batched = cases.filter((c) => Math.max(c.a.length > 2 ? tf.util.sizeFromShape(c.a.slice(0, -2)) : 1, c.b.length > 2 ? tf.util.sizeFromShape(c.b.slice(0, -2)) : 1) > 1);

describe('wasm batched GEMM on a pool of threads (threaded build, 2 threads, Node)', () => {
  afterAll(async () => {
    setGemmThreading('pool');
    await closeGemmPool();
  });

  it('the pooled product equals the calling-thread product bit for bit and cpu within 1e-5; the pool is used', async () => {
    await initBackend('cpu');
    const cpu = products(cases);
    const info = await initBackend('wasm', { threads: 2 });
    expect(info.threads).toBe(2);
    setBatchedMatMulPath('gemm');
    setGemmThreading('calling-thread');
    const callingBefore = gemmStats.callingThread;
    const calling = products(cases);
    expect(gemmStats.callingThread - callingBefore).toBe(batched.length);
    setGemmThreading('pool-always'); // small shapes too (by default they stay on the calling thread)
    const before = tf.memory().numTensors;
    const pooledBefore = gemmStats.pooled;
    const pooled = products(cases);
    expect(tf.memory().numTensors, 'leaked tensors').toBe(before);
    expect(gemmStats.pooled - pooledBefore, 'products that ran on the pool').toBe(batched.length);
    expect(liveGemmPools()).toEqual([1]); // threads − 1 workers
    // The worker claims entries only once it is awake, so on a busy machine it may miss small products: repeat
    // one until it has computed part of it (a counter, not a timing), and check that product's bits too.
    const [want] = products([FIXED[0] as Case]);
    let part: Float32Array | undefined;
    for (let i = 0; i < 500 && part === undefined; i++) {
      const w0 = gemmStats.workerEntries;
      const [got] = products([FIXED[0] as Case]);
      if (gemmStats.workerEntries > w0) part = got;
    }
    expect(part, 'the worker computed entries').toBeDefined();
    expectSameBits(part as Float32Array, want as Float32Array, 'a product the worker took part in');
    // By default only products worth a dispatch go to the pool: attention's shapes do, a tiny one does not.
    setGemmThreading('pool');
    const [pooledNow, callingNow] = [gemmStats.pooled, gemmStats.callingThread];
    products([FIXED[0] as Case, { a: [3, 7, 5], b: [3, 5, 9], ta: false, tb: false, seed: 1 }]);
    expect([gemmStats.pooled - pooledNow, gemmStats.callingThread - callingNow]).toEqual([1, 1]);
    cases.forEach((c, i) => {
      const what = JSON.stringify(c);
      expectSameBits(pooled[i] as Float32Array, calling[i] as Float32Array, `${what}: pool vs calling thread`);
      expectClose(pooled[i] as Float32Array, cpu[i] as Float32Array, `${what}: pool vs cpu`, 1e-5);
    });
  });

  for (const fault of ['throw', 'exit', 'hang'] as const) {
    it(`a worker that ${fault === 'hang' ? 'hangs' : fault === 'throw' ? 'throws' : 'exits'} gives a GemmWorkerError, no leak, and later products run on the calling thread`, async () => {
      await initBackend('wasm', { threads: 2 });
      setGemmThreading('pool-always');
      await closeGemmPool(); // a fresh pool for each fault
      const c = FIXED[0] as Case;
      const [want] = products([c]); // starts the pool
      expect(liveGemmPools()).toEqual([1]);
      const saved = setGemmShareTimeout(300);
      try {
        const before = tf.memory().numTensors;
        injectGemmWorkerFault(fault);
        const t0 = performance.now();
        const err = (() => {
          try {
            products([c]);
          } catch (e) {
            return e;
          }
          return undefined;
        })();
        expect(performance.now() - t0, 'bounded wait').toBeLessThan(20_000);
        expect(err).toBeInstanceOf(GemmWorkerError);
        expect((err as GemmWorkerError).code).toBe('BACKEND');
        const why = { throw: /worker 1 of 1 failed: Error: fault injected by a test/, exit: /worker 1 of 1 exited/, hang: /worker 1 of 1 did not finish its share within \d+ ms/ }[fault];
        expect((err as Error).message).toMatch(why);
        expect(tf.memory().numTensors, 'leaked tensors').toBe(before);
        const calling = gemmStats.callingThread;
        const [again] = products([c]);
        expect(gemmStats.callingThread).toBe(calling + 1);
        expectSameBits(again as Float32Array, want as Float32Array, 'after the failure');
        await new Promise((r) => setTimeout(r, 50));
        expect(liveGemmPools(), 'the failed pool is closed').toEqual([]);
      } finally {
        setGemmShareTimeout(saved);
      }
      // closeGemmPool starts over: the next product runs on a new pool again.
      await closeGemmPool();
      const pooled = gemmStats.pooled;
      const [fresh] = products([c]);
      expect(gemmStats.pooled).toBe(pooled + 1);
      expectSameBits(fresh as Float32Array, want as Float32Array, 'on a new pool');
    });
  }
});

describe('wasm batched GEMM pool in a child process (built dist)', () => {
  beforeAll(() => ensureBuilt(['clip-core']));

  it('runs a batched product on the pool and the process exits by itself (no referenced worker)', async () => {
    const script = [
      "import * as tf from '@tensorflow/tfjs-core';",
      "import { initBackend } from '@clip-ts/core';",
      // The module instance the package entry itself loads (the stats are internal, not exported).
      "const { gemmStats } = await import('./packages/clip-core/dist/kernels/wasm-gemm.js');",
      "const info = await initBackend('wasm', { threads: 2 });",
      'const y = tf.matMul(tf.ones([6, 100, 120]), tf.ones([6, 120, 90])).dataSync();',
      'console.log(JSON.stringify({ threads: info.threads, y0: y[0], y1: y[y.length - 1], pooled: gemmStats.pooled }));',
    ].join('\n');
    // A referenced worker would keep the child alive until execFile's timeout kills it, which rejects.
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      timeout: 120_000,
      env: { ...process.env, CLIP_WASM_THREADS: undefined },
    });
    expect(JSON.parse(stdout.trim().split('\n').pop() as string)).toEqual({ threads: 2, y0: 120, y1: 120, pooled: 1 });
  });
});
