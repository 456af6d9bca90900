import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError, describeBackend, initBackend, parseBackendName } from '../src/index.js';

const savedEnv = process.env.CLIP_BACKEND;
afterEach(() => {
  if (savedEnv === undefined) delete process.env.CLIP_BACKEND;
  else process.env.CLIP_BACKEND = savedEnv;
});

/** A tiny computation that must give the same answer on every backend. */
function smoke(): number[] {
  return tf.tidy(() => Array.from(tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])).dataSync()));
}

describe('initBackend', () => {
  for (const name of ['cpu', 'wasm'] as const) {
    it(`'${name}' initialises and computes`, async () => {
      const info = await initBackend(name);
      const threads = name === 'wasm' ? { threads: info.threads } : {};
      expect(info).toEqual({ requested: name, name, tfBackend: name, skipped: [], ...threads });
      if (name === 'wasm') expect(info.threads).toBeGreaterThanOrEqual(1);
      expect(tf.getBackend()).toBe(name);
      expect(smoke()).toEqual([19, 22, 43, 50]);
    });
  }

  it("'tensorflow' without @tensorflow/tfjs-node → BackendError saying how to install it", async () => {
    const err = await initBackend('tensorflow').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).code).toBe('BACKEND');
    expect((err as Error).message).toContain('npm install @tensorflow/tfjs-node');
    const gpu = await initBackend('tensorflow-gpu').catch((e: unknown) => e);
    expect((gpu as Error).message).toContain('npm install @tensorflow/tfjs-node-gpu');
  });

  it("'auto' picks wasm here and reports the node backends it skipped", async () => {
    const info = await initBackend('auto');
    expect(info.name).toBe('wasm');
    expect(info.skipped.map((s) => s.name)).toEqual(['tensorflow-gpu', 'tensorflow']);
    expect(info.skipped[1]?.reason).toMatch(/not installed/);
    const threads = `${info.threads} thread${info.threads === 1 ? '' : 's'}`;
    expect(describeBackend(info)).toBe(`backend: wasm (requested auto; skipped tensorflow-gpu, tensorflow, ${threads})`);
  });

  it('reads $CLIP_BACKEND when no name is given, and rejects unknown names', async () => {
    process.env.CLIP_BACKEND = 'cpu';
    expect((await initBackend()).name).toBe('cpu');
    process.env.CLIP_BACKEND = 'wasm';
    expect((await initBackend()).requested).toBe('wasm');
    process.env.CLIP_BACKEND = 'webgpu';
    await expect(initBackend()).rejects.toThrow(BackendError);
    await expect(initBackend()).rejects.toThrow(/CLIP_BACKEND: unknown backend 'webgpu'; expected one of auto, tensorflow-gpu/);
    expect(() => parseBackendName('gpu', '--backend')).toThrow(/--backend: unknown backend 'gpu'/);
    expect(parseBackendName('auto')).toBe('auto');
  });
});

describe('platforms', () => {
  it('under Node, browser-only backends are refused with the reason', async () => {
    const err = await initBackend('webgl').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toBe(
      "backend 'webgl' is only available in a browser; here choose one of auto, tensorflow-gpu, tensorflow, wasm, cpu",
    );
    expect(() => parseBackendName('webgpu', 'CLIP_BACKEND')).toThrow(/unknown backend 'webgpu'/);
  });

  it('the browser platform prefers GPU backends, reads no environment, and refuses tfjs-node', async () => {
    const { platform } = await import('../src/platform/browser.js');
    expect(platform.names).toEqual(['auto', 'webgpu', 'webgl', 'wasm', 'cpu']);
    expect(platform.autoOrder).toEqual(['webgpu', 'webgl', 'wasm', 'cpu']);
    process.env.CLIP_BACKEND = 'cpu';
    expect(platform.envBackend()).toBeUndefined();
    expect(platform.activator('tensorflow')).toBeUndefined();
    // Node has no WebGPU: the activator says so instead of importing anything.
    await expect((platform.activator('webgpu') as () => Promise<void>)()).rejects.toThrow(/this browser has no WebGPU/);
  });
});

describe('kernel registration', () => {
  it('initBackend installs the cpu UnsortedSegmentSum replacement (one table, not a public hook)', async () => {
    const core = await import('../src/index.js');
    expect('addKernelFill' in core).toBe(false);
    await initBackend('cpu');
    const kernel = tf.getKernel('UnsortedSegmentSum', 'cpu');
    // tfjs-backend-cpu's own kernel is named unsortedSegmentSum; ours is the single-pass replacement.
    expect(kernel?.kernelFunc.name).toBe('unsortedSegmentSumCpu');
  });
});
