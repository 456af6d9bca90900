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

/** A batched product for the pool: the whole batch's arguments, claimed `chunk` entries at a time. */
export interface GemmJob {
  /** `gemm`'s arguments for the whole batch; the scratch argument is replaced by each thread's own. */
  readonly args: GemmArgs;
  /** A 16-byte aligned scratch block per worker, each large enough for one entry. */
  readonly scratch: readonly number[];
  /** Entries per claim: small enough that a late or slow thread leaves little for the others to wait on. */
  readonly chunk: number;
}

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
   * Run `job`: the calling thread (through `own(e0, e1)`, entries e0 ≤ e < e1) and the workers claim chunks of
   * entries from a shared counter until none are left, so a worker that wakes late just takes fewer. Returns
   * once every claimed chunk is done, with how many entries the workers computed. Throws a GemmWorkerError
   * (within a bounded wait, never a hang) when a worker fails, has died or does not finish; the pool is
   * closed then.
   */
  run(job: GemmJob, own: (e0: number, e1: number) => void): { workerEntries: number };
  /** Stop the workers (idempotent); resolves once they have exited. */
  close(): Promise<void>;
}
