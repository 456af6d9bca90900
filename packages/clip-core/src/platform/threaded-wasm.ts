import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';

/**
 * Starts tfjs-backend-wasm's threaded SIMD build under Node (Node only; reached through #platform).
 *
 * The package's own init never does this in Node: its feature flag says "no threads" there, and it hands the
 * Emscripten glue a Blob URL for the pthread worker script, which `worker_threads` cannot run. So we call the
 * Emscripten factory ourselves with the three hooks Emscripten documents:
 * - `locateFile` gives the worker an ES-module data: URL (Node runs those) that rebuilds CommonJS `require`
 *   and then runs tfjs' worker script unchanged;
 * - `mainScriptUrlOrBlob` is the glue's real file, which each worker loads with `importScripts`;
 * - `instantiateWasm` reports 2·threads logical cores to the module: its C++ caps the XNNPACK pool at half the
 *   logical cores (SMT guess) and 8, so without this a 2-core machine would get one thread whatever we ask.
 *
 * The glue and worker files are read from the package directory, not imported as modules: neither touches
 * tfjs-core, so there is no second tfjs instance. The BackendWasm that wraps the module comes from the entry
 * point, so kernels, flags and `getThreadsCount()` are the package's own.
 */

const PKG = '@tensorflow/tfjs-backend-wasm';
const GLUE = 'wasm-out/tfjs-backend-wasm-threaded-simd.js';
const WORKER = 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js';
const BINARY = 'tfjs-backend-wasm-threaded-simd.wasm';

interface EmscriptenWorker {
  unref(): void;
  terminate(): Promise<number>;
}

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...args: unknown[]) => unknown;
  PThread: {
    runningWorkers: EmscriptenWorker[];
    unusedWorkers: EmscriptenWorker[];
    terminateAllThreads(): void;
  };
  tfjs?: Record<string, unknown>;
}

interface FactoryConfig {
  locateFile(path: string, prefix: string): string | URL;
  mainScriptUrlOrBlob: string;
  instantiateWasm(
    imports: { env: Record<string, unknown> },
    receive: (instance: object, module: object) => void,
  ): Record<string, never>;
  onAbort(reason: unknown): void;
  PThread?: ThreadedModule['PThread'];
}

type Factory = (config: FactoryConfig) => Promise<ThreadedModule>;

// Typed by hand: the repo compiles against Node's lib, which declares no WebAssembly JS API.
interface WasmInstantiated {
  instance: object;
  module: object;
}
const { WebAssembly: wasmApi } = globalThis as unknown as {
  WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<WasmInstantiated> };
};

/**
 * The pthread worker: an ES module (what Node runs from a data: URL) that gives tfjs' classic worker script the
 * CommonJS `require` and `__filename` it expects. The worker script is a template-literal string in which `\n`
 * inside its own string literals became real newlines; tfjs escapes them back before running it, so do we.
 */
function workerUrl(gluePath: string, workerSource: string): URL {
  const code =
    `import { createRequire } from 'node:module';\n` +
    `const require = createRequire(${JSON.stringify(pathToFileURL(gluePath).href)});\n` +
    `new Function('require', '__filename', ${JSON.stringify(workerSource.replace(/\n/g, '\\n'))})(require, ${JSON.stringify(gluePath)});\n`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** Don't let idle or pool threads keep the process alive once the main thread's work is done. */
function unrefAll(module: ThreadedModule): void {
  for (const w of [...module.PThread.runningWorkers, ...module.PThread.unusedWorkers]) w.unref();
}

/**
 * Create a wasm backend running XNNPACK on `threads` threads (the C++ caps it at 8; `getThreadsCount()` from
 * tfjs-backend-wasm reports what it got). Rejects with a BackendError if the module has not started within
 * `timeoutMs` (its workers are then terminated, so nothing keeps running). The caller owns the returned
 * backend (tfjs' engine, once registered as a factory result).
 */
export async function startThreadedWasm(threads: number, timeoutMs: number): Promise<tf.KernelBackend> {
  // Imported here, not at the top: importing the package registers the 'wasm' backend, and a registered but
  // uninitialised async backend makes tfjs refuse every op of a program that never called initBackend.
  const { BackendWasm, setThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  let gluePath: string;
  let factory: Factory;
  let workerSource: string;
  try {
    gluePath = require.resolve(`${PKG}/${GLUE}`);
    factory = require(gluePath) as Factory;
    workerSource = (require(`${PKG}/${WORKER}`) as { wasmWorkerContents: string }).wasmWorkerContents;
  } catch (err) {
    throw new BackendError(`threaded wasm: ${PKG} has no threaded build here: ${(err as Error).message}`, { cause: err });
  }
  const binary = await readFile(join(dirname(gluePath), BINARY));
  const worker = workerUrl(gluePath, workerSource);

  let abort: (reason: unknown) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    abort = reject;
  });
  const config: FactoryConfig = {
    locateFile: (path, prefix) => (path.endsWith('.worker.js') ? worker : prefix + path),
    mainScriptUrlOrBlob: gluePath,
    instantiateWasm(imports, receive) {
      imports.env['emscripten_num_logical_cores'] = () => 2 * threads;
      wasmApi.instantiate(binary, imports).then(
        (r) => receive(r.instance, r.module),
        (err: unknown) => abort(err),
      );
      return {};
    },
    onAbort: (reason) => abort(reason),
  };

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BackendError(`threaded wasm: not started after ${timeoutMs} ms`)), timeoutMs);
  });
  let module: ThreadedModule;
  try {
    module = await Promise.race([factory(config), aborted, timeout]);
  } catch (err) {
    // Emscripten puts PThread on the config object synchronously, so its workers can be stopped even if the
    // module never became ready.
    config.PThread?.terminateAllThreads();
    throw err instanceof BackendError
      ? err
      : new BackendError(`threaded wasm: failed to start: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }

  // The same bridge tfjs' own init() installs (BackendWasm and the kernels call these).
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  setThreadsCount(threads);
  // The constructor creates XNNPACK's pool; its threads are running workers from here on.
  const backend = new BackendWasm(module as unknown as ConstructorParameters<typeof BackendWasm>[0]);
  unrefAll(module);
  return backend;
}
