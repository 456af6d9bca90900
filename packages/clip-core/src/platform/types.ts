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
}
