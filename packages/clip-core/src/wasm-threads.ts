import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { platform } from '#platform';
import { BackendError } from './errors.js';

/**
 * How many threads the wasm backend runs XNNPACK on, and starting it that way. Under Node the threaded SIMD
 * build is started by the platform module (tfjs' own init stays single-threaded there); in a browser tfjs
 * picks the threaded build itself when the page is cross-origin isolated, and we only pass the count on.
 */

/** Far above any core count we run on; tfjs-backend-wasm itself caps its pool at 8 threads. */
export const MAX_WASM_THREADS = 256;
/** How long the threaded build may take to start before falling back (its 8 pool workers start at once). */
export const DEFAULT_WASM_STARTUP_TIMEOUT_MS = 30_000;
/** tfjs-backend-wasm registers itself with this priority; a re-registered factory keeps it. */
const WASM_PRIORITY = 2;

const ThreadCount = z.number().int().min(1).max(MAX_WASM_THREADS);
const ThreadCountText = z
  .string()
  .trim()
  .regex(/^\d+$/, 'expected a whole number of threads')
  .transform(Number)
  .pipe(ThreadCount);

/**
 * Parse a thread count from user input (env var, CLI flag, option): a whole number from 1 to
 * MAX_WASM_THREADS; throws a BackendError naming `source` otherwise.
 */
export function parseThreadCount(value: string | number, source = 'threads'): number {
  const parsed = typeof value === 'number' ? ThreadCount.safeParse(value) : ThreadCountText.safeParse(value);
  if (parsed.success) return parsed.data;
  const why = parsed.error.issues.map((i) => i.message).join('; ');
  throw new BackendError(`${source}: invalid thread count ${JSON.stringify(value)} (${why}); expected 1..${MAX_WASM_THREADS}`);
}

/** The thread count initBackend asks for: the option, else $CLIP_WASM_THREADS (Node), else the platform default. */
export function resolveWasmThreads(option?: number): number | undefined {
  if (option !== undefined) return parseThreadCount(option, 'threads');
  const env = platform.envThreads();
  if (env) return parseThreadCount(env.value, env.source);
  return platform.defaultThreads();
}

type Factory = () => tf.KernelBackend | Promise<tf.KernelBackend>;

let stockFactory: Factory | undefined;
/** The thread count the currently registered 'wasm' factory was made for (undefined: tfjs' own, untouched). */
let registeredThreads: number | undefined;

function threadedFactory(
  start: NonNullable<typeof platform.startThreadedWasm>,
  threads: number,
  timeoutMs: number,
  fallback: Factory,
): Factory {
  return async () => {
    try {
      return await start(threads, timeoutMs);
    } catch (err) {
      console.warn(
        `clip-ts: the threaded wasm backend (${threads} threads) did not start: ${(err as Error).message}. ` +
          'Continuing on the single-threaded wasm backend; set CLIP_WASM_THREADS=1 to skip the attempt.',
      );
      return fallback();
    }
  };
}

/**
 * Make the 'wasm' backend factory start `threads` threads. A backend already running with another count is
 * disposed first (its tensors with it), so choose the count before creating tensors.
 */
function useThreads(threads: number, timeoutMs: number, setThreadsCount: (n: number) => void): void {
  const start = platform.startThreadedWasm;
  if (!start) {
    setThreadsCount(threads);
    return;
  }
  if (registeredThreads === threads || (registeredThreads === undefined && threads === 1)) {
    registeredThreads = threads;
    return;
  }
  stockFactory ??= tf.findBackendFactory('wasm');
  const stock = stockFactory;
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', threads === 1 ? stock : threadedFactory(start, threads, timeoutMs, stock), WASM_PRIORITY);
  registeredThreads = threads;
}

/**
 * Load tfjs-backend-wasm, make it run on `threads` threads (undefined: tfjs' default) and set it as the
 * backend. Returns the thread count XNNPACK actually uses (1 after a fallback).
 */
export async function activateWasm(threads: number | undefined, timeoutMs = DEFAULT_WASM_STARTUP_TIMEOUT_MS): Promise<number> {
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    throw new BackendError(`backend 'wasm': @tensorflow/tfjs-backend-wasm failed to load: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (threads !== undefined) useThreads(threads, timeoutMs, wasm.setThreadsCount);
  if (!(await tf.setBackend('wasm'))) {
    throw new BackendError("backend 'wasm': tf.setBackend('wasm') failed (the .wasm binary could not be loaded)");
  }
  return wasm.getThreadsCount();
}
