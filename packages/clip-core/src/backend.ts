import * as tf from '@tensorflow/tfjs-core';
// Gradients are registered by tfjs-layers' entry point (tfjs-core alone ships none); importing it here
// means every consumer of @clip-ts/core can train.
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
// Node or browser, chosen by package.json `imports` conditions: Node-only code (tfjs-node detection,
// $CLIP_BACKEND) never reaches a browser bundle.
import { platform } from '#platform';
import { BackendError } from './errors.js';
import { registerKernels } from './kernels/index.js';
import { guardWasmHeap } from './kernels/wasm-heap-guard.js';
import { activateWasm, resolveWasmThreads } from './wasm-threads.js';

/** The names Node accepts (the CLI's, config files' and $CLIP_BACKEND's choices). */
export const BACKEND_NAMES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
/** The names a browser accepts. */
export const BROWSER_BACKEND_NAMES = ['auto', 'webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackendName = (typeof BROWSER_BACKEND_NAMES)[number];
export type AnyBackendName = BackendName | BrowserBackendName;
export type ResolvedBackend = Exclude<AnyBackendName, 'auto'>;

export interface BackendInfo {
  /** What was asked for. */
  requested: AnyBackendName;
  /** What is running. */
  name: ResolvedBackend;
  /** tfjs's own backend name (`tensorflow`, `webgl`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Why earlier candidates were passed over (auto only). */
  skipped: Array<{ name: ResolvedBackend; reason: string }>;
  /** Threads the wasm backend runs its kernels on (wasm only; 1 when the threaded build could not start). */
  threads?: number;
}

export interface InitBackendOptions {
  /**
   * Threads for the wasm backend (ignored by the others): default `$CLIP_WASM_THREADS` (Node), then
   * `os.availableParallelism()` under Node; 1 is the single-threaded build. tfjs-backend-wasm caps it at 8.
   */
  threads?: number;
  /** How long the threaded wasm build may take to start before initBackend falls back to one thread. */
  wasmStartupTimeoutMs?: number;
}

/** Set backend `name`; returns the wasm thread count when it is wasm. */
async function activate(name: ResolvedBackend, options: InitBackendOptions, threads: number | undefined): Promise<number | undefined> {
  if (name === 'wasm') return activateWasm(threads, options.wasmStartupTimeoutMs);
  if (name === 'cpu') {
    if (!(await tf.setBackend('cpu'))) throw new BackendError("backend 'cpu' failed to initialise");
    return undefined;
  }
  const own = platform.activator(name);
  if (!own) {
    const where = platform.name === 'node' ? 'in a browser' : 'under Node';
    throw new BackendError(`backend '${name}' is only available ${where}; here choose one of ${platform.names.join(', ')}`);
  }
  await own();
  return undefined;
}

/** Parse a Node backend name from user input (CLI flag, env var); throws a BackendError listing the valid names. */
export function parseBackendName(value: string, source = 'backend'): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new BackendError(`${source}: unknown backend '${value}'; expected one of ${BACKEND_NAMES.join(', ')}`);
}

/**
 * Select and initialise the tfjs backend, then install clip-ts's kernels for it. `name` defaults to
 * `$CLIP_BACKEND` (Node only), then `auto`. Under Node `auto` tries tfjs-node-gpu, tfjs-node, wasm, cpu;
 * in a browser webgpu (when the page provides @tensorflow/tfjs-backend-webgpu), webgl, wasm, cpu. It
 * reports what it chose and why it skipped the others; an explicit name that cannot be used throws a
 * BackendError saying how to fix it. `options.threads` (else `$CLIP_WASM_THREADS`, else every core) sets the
 * wasm backend's thread count; a threaded build that cannot start falls back to one thread with a warning.
 */
export async function initBackend(name?: AnyBackendName, options: InitBackendOptions = {}): Promise<BackendInfo> {
  // Validated before anything starts, so a bad $CLIP_WASM_THREADS fails the same way on every backend.
  const threads = resolveWasmThreads(options.threads);
  const env = platform.envBackend();
  const requested = name ?? (env ? parseBackendName(env.value, env.source) : 'auto');
  const candidates = requested === 'auto' ? (platform.autoOrder as ResolvedBackend[]) : [requested];
  const skipped: BackendInfo['skipped'] = [];
  for (const candidate of candidates) {
    try {
      const wasmThreads = await activate(candidate, options, threads);
      await tf.ready();
      registerKernels(tf.getBackend());
      guardWasmHeap(tf.backend());
      const info: BackendInfo = { requested, name: candidate, tfBackend: tf.getBackend(), skipped };
      if (wasmThreads !== undefined) info.threads = wasmThreads;
      return info;
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
  const threads = info.threads !== undefined ? `, ${info.threads} thread${info.threads === 1 ? '' : 's'}` : '';
  return `backend: ${info.name} (requested ${info.requested}${skipped}${threads})`;
}
