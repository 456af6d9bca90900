import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';
import type { Platform } from './types.js';

/** Browsers (and any non-Node bundle target): GPU backends first; no environment variables. */

const WEBGPU_PACKAGE = '@tensorflow/tfjs-backend-webgpu';

async function tryWebgpu(): Promise<void> {
  // Typed by hand: the repo compiles against Node's lib, which has no DOM `navigator`.
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (nav?.gpu === undefined) throw new BackendError("backend 'webgpu': this browser has no WebGPU");
  try {
    // Not a dependency: a variable specifier leaves it to the page (import map, or the app's own bundle).
    await import(/* @vite-ignore */ WEBGPU_PACKAGE);
  } catch (err) {
    throw new BackendError(`backend 'webgpu': ${WEBGPU_PACKAGE} is not available: ${(err as Error).message}`, { cause: err });
  }
  if (!(await tf.setBackend('webgpu'))) throw new BackendError("backend 'webgpu': tf.setBackend('webgpu') failed");
}

async function tryWebgl(): Promise<void> {
  try {
    await import('@tensorflow/tfjs-backend-webgl');
  } catch (err) {
    throw new BackendError(`backend 'webgl': @tensorflow/tfjs-backend-webgl failed to load: ${(err as Error).message}`, { cause: err });
  }
  if (!(await tf.setBackend('webgl'))) throw new BackendError("backend 'webgl': tf.setBackend('webgl') failed (no WebGL context)");
}

export const platform: Platform = {
  name: 'browser',
  names: ['auto', 'webgpu', 'webgl', 'wasm', 'cpu'],
  autoOrder: ['webgpu', 'webgl', 'wasm', 'cpu'],
  envBackend: () => undefined,
  activator(name) {
    if (name === 'webgpu') return tryWebgpu;
    if (name === 'webgl') return tryWebgl;
    return undefined;
  },
  envThreads: () => undefined,
  defaultThreads: () => undefined,
};
