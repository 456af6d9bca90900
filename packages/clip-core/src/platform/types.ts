import type * as tf from '@tensorflow/tfjs-core';

/** What initBackend needs from the platform it runs on (resolved through package.json `imports` #platform). */
export interface Platform {
  readonly name: 'node' | 'browser';
  /** Names a user may ask for here, `auto` first (parseBackendName's list). */
  readonly names: readonly string[];
  /** `auto`'s order of preference. */
  readonly autoOrder: readonly string[];
  /** The backend named by the environment (Node: $CLIP_BACKEND), if any. */
  envBackend(): { value: string; source: string } | undefined;
  /** Load and set a platform-specific backend; undefined when `name` is not one of this platform's own. */
  activator(name: string): (() => Promise<void>) | undefined;
  /** The wasm thread count named by the environment (Node: $CLIP_WASM_THREADS), if any. */
  envThreads(): { value: string; source: string } | undefined;
  /** Threads to use when nobody says (Node: os.availableParallelism()); undefined leaves it to tfjs. */
  defaultThreads(): number | undefined;
  /**
   * Start the wasm backend on `threads` threads when the platform needs its own start-up for that (Node);
   * undefined where tfjs' own init already handles threads (browsers, when cross-origin isolated).
   */
  readonly startThreadedWasm?: (threads: number, timeoutMs: number) => Promise<tf.KernelBackend>;
  /**
   * Start threads that run shares of our batched GEMM (kernels/wasm-gemm.ts) on the threaded build's shared
   * memory (Node: worker_threads synchronised with Atomics); undefined where the calling thread may not block
   * waiting for them (a page's main thread), so the GEMM stays on the calling thread there.
   */
  readonly startGemmPool?: (options: GemmPoolOptions) => GemmPool;
}

/** The 14 arguments of the GEMM module's `gemm` export, in order (kernels/wasm-gemm.ts, scripts/gemm-wasm.mjs). */
export type GemmArgs = readonly number[];

export interface GemmPoolOptions {
  /** The backend's shared WebAssembly.Memory (typed loosely: Node's lib declares no WebAssembly API). */
  readonly memory: object;
  /** The compiled GEMM module for a shared memory (a WebAssembly.Module). */
  readonly module: object;
  /** Worker threads to start (the calling thread takes a share too). */
  readonly workers: number;
}

/** Threads of our own for the batched GEMM; the pool owns them, its creator owns the pool (close it). */
export interface GemmPool {
  readonly workers: number;
  /**
   * Run `shares[i]` on worker i while `own` runs on the calling thread; returns once all are done. Throws a
   * GemmWorkerError (within a bounded wait, never a hang) when a worker fails, has died or does not finish;
   * the pool is closed then.
   */
  run(shares: readonly GemmArgs[], own: () => void): void;
  /** Stop the workers (idempotent); resolves once they have exited. */
  close(): Promise<void>;
}
