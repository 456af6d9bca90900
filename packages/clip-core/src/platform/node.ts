import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';
import type { Platform } from './types.js';
import { startGemmPool } from './gemm-pool.js';
import { startThreadedWasm } from './threaded-wasm.js';

/** Node: the optional tfjs-node(-gpu) packages and $CLIP_BACKEND. Never part of a browser bundle. */

const NODE_PACKAGES: Record<string, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

/** True when `pkg` can be found from here (decided before importing, so bundlers' errors don't blur it). */
function isInstalled(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

async function tryNode(name: string, pkg: string): Promise<void> {
  if (!isInstalled(pkg)) {
    throw new BackendError(
      `backend '${name}' needs the optional package ${pkg}, which is not installed. ` +
        `Install it with: npm install ${pkg}@4.22.0 (it downloads libtensorflow${name === 'tensorflow-gpu' ? ' with CUDA support' : ''}).`,
    );
  }
  try {
    // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
    await import(/* @vite-ignore */ pkg);
  } catch (err) {
    throw new BackendError(`backend '${name}': ${pkg} is installed but failed to load: ${(err as Error).message}`, { cause: err });
  }
  if (!(await tf.setBackend('tensorflow'))) {
    throw new BackendError(`backend '${name}': ${pkg} loaded but tf.setBackend('tensorflow') failed`);
  }
}

export const platform: Platform = {
  name: 'node',
  names: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'],
  autoOrder: ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'],
  envBackend() {
    const value = process.env.CLIP_BACKEND;
    return value === undefined ? undefined : { value, source: 'CLIP_BACKEND' };
  },
  activator(name) {
    const pkg = NODE_PACKAGES[name];
    return pkg === undefined ? undefined : () => tryNode(name, pkg);
  },
  envThreads() {
    const value = process.env.CLIP_WASM_THREADS;
    return value === undefined ? undefined : { value, source: 'CLIP_WASM_THREADS' };
  },
  defaultThreads: () => availableParallelism(),
  startThreadedWasm,
  startGemmPool,
};
