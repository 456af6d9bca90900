import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
// Gradients are registered by tfjs-layers' entry point (tfjs-core alone ships none); importing it here
// means every consumer of @clip-ts/core can train.
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { BackendError } from './errors.js';
import { registerKernelFills } from './kernels/index.js';
// Adds the wasm UnsortedSegmentSum fill (gradient of gather) to the fills registerKernelFills installs.
import './kernels/unsorted-segment-sum.js';

export const BACKEND_NAMES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export type ResolvedBackend = Exclude<BackendName, 'auto'>;

export interface BackendInfo {
  /** What was asked for. */
  requested: BackendName;
  /** What is running. */
  name: ResolvedBackend;
  /** tfjs's own backend name (`tensorflow`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Why earlier candidates were passed over (auto only). */
  skipped: Array<{ name: ResolvedBackend; reason: string }>;
}

const NODE_PACKAGES: Record<'tensorflow-gpu' | 'tensorflow', string> = {
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

async function tryNode(name: 'tensorflow-gpu' | 'tensorflow'): Promise<void> {
  const pkg = NODE_PACKAGES[name];
  if (!isInstalled(pkg)) {
    throw new BackendError(
      `backend '${name}' needs the optional package ${pkg}, which is not installed. ` +
        `Install it with: npm install ${pkg}@4.22.0 (it downloads libtensorflow${name === 'tensorflow-gpu' ? ' with CUDA support' : ''}).`,
    );
  }
  try {
    // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
    await import(/* @vite-ignore */ pkg as string);
  } catch (err) {
    throw new BackendError(`backend '${name}': ${pkg} is installed but failed to load: ${(err as Error).message}`, { cause: err });
  }
  if (!(await tf.setBackend('tensorflow'))) {
    throw new BackendError(`backend '${name}': ${pkg} loaded but tf.setBackend('tensorflow') failed`);
  }
}

async function tryWasm(): Promise<void> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    throw new BackendError(`backend 'wasm': @tensorflow/tfjs-backend-wasm failed to load: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!(await tf.setBackend('wasm'))) {
    throw new BackendError("backend 'wasm': tf.setBackend('wasm') failed (the .wasm binary could not be loaded)");
  }
}

async function activate(name: ResolvedBackend): Promise<void> {
  if (name === 'tensorflow-gpu' || name === 'tensorflow') await tryNode(name);
  else if (name === 'wasm') await tryWasm();
  else if (!(await tf.setBackend('cpu'))) throw new BackendError("backend 'cpu' failed to initialise");
}

/** Parse a backend name from user input (CLI flag, env var); throws a BackendError listing the valid names. */
export function parseBackendName(value: string, source = 'backend'): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new BackendError(`${source}: unknown backend '${value}'; expected one of ${BACKEND_NAMES.join(', ')}`);
}

/**
 * Select and initialise the tfjs backend. `name` defaults to `$CLIP_BACKEND`, then `auto`.
 * `auto` tries tfjs-node-gpu, tfjs-node, wasm, cpu in that order and reports what it chose and why it
 * skipped the others; an explicit name that cannot be used throws a BackendError saying how to fix it.
 */
export async function initBackend(name?: BackendName): Promise<BackendInfo> {
  const requested = name ?? parseBackendName(process.env.CLIP_BACKEND ?? 'auto', 'CLIP_BACKEND');
  const candidates: ResolvedBackend[] =
    requested === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [requested];
  const skipped: BackendInfo['skipped'] = [];
  for (const candidate of candidates) {
    try {
      await activate(candidate);
      await tf.ready();
      registerKernelFills(tf.getBackend());
      return { requested, name: candidate, tfBackend: tf.getBackend(), skipped };
    } catch (err) {
      if (requested !== 'auto') throw err;
      skipped.push({ name: candidate, reason: (err as Error).message });
    }
  }
  throw new BackendError(
    `no tfjs backend could be initialised:\n${skipped.map((s) => `  ${s.name}: ${s.reason}`).join('\n')}`,
  );
}

/** One line for logs: `backend: wasm (auto; skipped tensorflow-gpu, tensorflow: not installed)`. */
export function describeBackend(info: BackendInfo): string {
  const skipped = info.skipped.length > 0 ? `; skipped ${info.skipped.map((s) => s.name).join(', ')}` : '';
  return `backend: ${info.name} (requested ${info.requested}${skipped})`;
}
