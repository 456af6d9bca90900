import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BackendError,
  CLIPModel,
  MAX_WASM_THREADS,
  createImageEncoder,
  createTextEncoder,
  initBackend,
  parseThreadCount,
} from '../src/index.js';
import { expectClose } from './helpers/close.js';
import { ROOT, ensureBuilt } from './helpers/ensure-built.js';
import { IMAGE_CONFIG, TEXT_CONFIG, fakeBatch, registerFakeTowers } from './helpers/fake-towers.js';

const savedEnv = process.env.CLIP_WASM_THREADS;
afterEach(() => {
  if (savedEnv === undefined) delete process.env.CLIP_WASM_THREADS;
  else process.env.CLIP_WASM_THREADS = savedEnv;
});

describe('thread counts from user input', () => {
  it('parseThreadCount takes whole numbers 1..MAX_WASM_THREADS, as text or number', () => {
    expect(parseThreadCount('2')).toBe(2);
    expect(parseThreadCount(' 3 ')).toBe(3);
    expect(parseThreadCount(1)).toBe(1);
    expect(parseThreadCount(String(MAX_WASM_THREADS))).toBe(MAX_WASM_THREADS);
  });

  for (const bad of ['0', '-1', '1.5', 'two', '', ' ', String(MAX_WASM_THREADS + 1), '0x2'] as const) {
    it(`CLIP_WASM_THREADS=${JSON.stringify(bad)} → BackendError naming the variable, whatever the backend`, async () => {
      process.env.CLIP_WASM_THREADS = bad;
      const err = await initBackend('cpu').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendError);
      expect((err as BackendError).code).toBe('BACKEND');
      expect((err as Error).message).toMatch(/^CLIP_WASM_THREADS: invalid thread count/);
    });
  }

  it('a bad threads option → BackendError naming `threads` (and it wins over the env var)', async () => {
    process.env.CLIP_WASM_THREADS = 'junk';
    await expect(initBackend('cpu', { threads: 0 })).rejects.toThrow(/^threads: invalid thread count 0/);
    await expect(initBackend('cpu', { threads: 2.5 })).rejects.toThrow(BackendError);
    expect((await initBackend('cpu', { threads: 1 })).name).toBe('cpu');
  });
});

type Results = Record<string, Float32Array>;

/**
 * The same products, convolution, slices and a tiny CLIP forward + gradient on the active backend. Inputs
 * come from seeded tf.random* (generated in JS, identical on every backend). Returns copies (caller owns).
 */
function workload(): Results {
  const before = tf.memory().numTensors;
  const model = new CLIPModel({
    imageEncoder: createImageEncoder(IMAGE_CONFIG, { seed: 11 }),
    textEncoder: createTextEncoder(TEXT_CONFIG, { seed: 12 }),
    projectionDim: 8,
    head: 'mlp',
    seed: 5,
  });
  const batch = fakeBatch(16);
  const tensors = tf.tidy(() => {
    const r = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
    const out: Record<string, tf.Tensor> = {
      // Large enough that XNNPACK splits the work across threads.
      matMul: tf.matMul(r([300, 257], 1), r([257, 190], 2)),
      // Our BatchMatMul override (transposed operands, batched).
      batchMatMulT: tf.matMul(r([6, 70, 40], 3), r([6, 50, 70], 4), true, true),
      conv: tf.conv2d(r([2, 24, 24, 8], 5) as tf.Tensor4D, r([3, 3, 8, 16], 6) as tf.Tensor4D, 1, 'same'),
    };
    // ~96 MB grows the (shared) heap: the Slice override must read the grown buffer, including its far end.
    const big = tf.fill([24_000_000], 0.5);
    out.slice = tf.slice(out.conv as tf.Tensor4D, [1, 3, 2, 1], [1, 10, 11, 7]);
    out.bigSum = tf.sum(tf.slice(big, [23_999_000], [1000]));
    const named = model.namedVariables();
    const { value, grads } = tf.variableGrads(() => model.loss(batch) as tf.Scalar, named.map((v) => v.variable));
    out.loss = value;
    // tfjs keys gradients by its auto-numbered variable names, which differ between models: use HF names.
    for (const v of named) out[`grad:${v.name}`] = grads[v.variable.name] as tf.Tensor;
    return out;
  });
  const results: Results = {};
  for (const [k, t] of Object.entries(tensors)) results[k] = t.dataSync() as Float32Array;
  tf.dispose(Object.values(tensors));
  tf.dispose([batch.pixelValues, batch.inputIds, batch.attentionMask]);
  model.dispose();
  expect(tf.memory().numTensors, 'workload leaked tensors').toBe(before);
  return results;
}

describe('threaded wasm (Node)', () => {
  beforeAll(() => registerFakeTowers());

  it('2 threads give the single-threaded wasm and the cpu results within 1e-5', async () => {
    await initBackend('cpu');
    const cpu = workload();
    const one = await initBackend('wasm', { threads: 1 });
    expect(one.threads).toBe(1);
    const single = workload();
    const two = await initBackend('wasm', { threads: 2 });
    expect(two.threads).toBe(2);
    expect(tf.getBackend()).toBe('wasm');
    const threaded = workload();

    expect(Object.keys(threaded).sort()).toEqual(Object.keys(cpu).sort());
    expect(Object.keys(threaded).filter((k) => k.startsWith('grad:')).length).toBeGreaterThan(4);
    for (const key of Object.keys(cpu)) {
      expectClose(threaded[key] as Float32Array, single[key] as Float32Array, `${key}: 2 threads vs 1`);
      expectClose(threaded[key] as Float32Array, cpu[key] as Float32Array, `${key}: 2 threads vs cpu`);
    }
  });
});

describe('threaded wasm in a child process (built dist)', () => {
  const run = promisify(execFile);
  beforeAll(() => ensureBuilt(['clip-core']));

  /** Starts wasm with 2 threads in a fresh `node`, does one product, prints what ran; must exit on its own. */
  async function child(timeoutMs?: number): Promise<{ out: { threads: number; y0: number }; stderr: string }> {
    const options = timeoutMs === undefined ? '{ threads: 2 }' : `{ threads: 2, wasmStartupTimeoutMs: ${timeoutMs} }`;
    const script = [
      "import * as tf from '@tensorflow/tfjs-core';",
      "import { initBackend } from '@clip-ts/core';",
      `const info = await initBackend('wasm', ${options});`,
      'const y = tf.matMul(tf.ones([200, 300]), tf.ones([300, 100])).dataSync();',
      'console.log(JSON.stringify({ threads: info.threads, y0: y[0] }));',
    ].join('\n');
    // A worker left referenced would keep the child alive until execFile kills it, which rejects.
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      timeout: 120_000,
      env: { ...process.env, CLIP_WASM_THREADS: undefined },
    });
    return { out: JSON.parse(stdout.trim().split('\n').pop() as string) as { threads: number; y0: number }, stderr };
  }

  it('runs on 2 threads and the process exits by itself', async () => {
    const { out, stderr } = await child();
    expect(out).toEqual({ threads: 2, y0: 300 });
    expect(stderr).not.toMatch(/threaded wasm/);
  });

  it('a start-up timeout falls back to one thread with exactly one warning, and still exits', async () => {
    const { out, stderr } = await child(1);
    expect(out).toEqual({ threads: 1, y0: 300 });
    const warnings = stderr.split('\n').filter((l) => l.includes('threaded wasm backend'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/\(2 threads\) did not start: threaded wasm: not started after 1 ms.*single-threaded/);
  });

  it('importing the package registers no wasm backend: a program that never calls initBackend runs on cpu', async () => {
    const script = [
      "import * as tf from '@tensorflow/tfjs-core';",
      "import '@clip-ts/core';",
      'const y = tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0];',
      'console.log(JSON.stringify({ backend: tf.getBackend(), y }));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split('\n').pop() as string)).toEqual({ backend: 'cpu', y: 3 });
  });
});
