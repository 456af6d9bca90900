/**
 * Our own WebAssembly modules (the batched GEMM, the fused optimizer update) run on tfjs-backend-wasm's memory:
 * instantiated against the backend's Memory object, they read and write tensors where tfjs keeps them.
 */

// Typed by hand: the repo compiles against Node's lib, which declares no WebAssembly JS API.
export interface WasmMemory {
  buffer: ArrayBufferLike;
}
interface WasmApi {
  Memory: abstract new (...args: never[]) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const { WebAssembly: wasmApi, atob: decodeBase64 } = globalThis as unknown as { WebAssembly?: WasmApi; atob: (s: string) => string };

/** Where the backend's Emscripten module keeps its memory. */
export interface WasmMemoryHost {
  /** The threaded build's (shared) memory. */
  wasmMemory?: WasmMemory;
  /** The single-threaded build's exports (its memory is exported there). */
  asm?: { memory?: WasmMemory };
}

/** The backend's Memory object (the threaded build keeps it in `wasmMemory`, the single-threaded one exports it). */
export function backendMemory(host: WasmMemoryHost): WasmMemory | undefined {
  return host.wasmMemory ?? host.asm?.memory;
}

export interface BackendMemoryInstance {
  exports: Record<string, unknown>;
  /** The compiled module (workers instantiate it against the same shared memory). */
  module: object;
  /** Whether the memory is shared (the threaded build). */
  shared: boolean;
}

function decode(base64: string): Uint8Array {
  const text = decodeBase64(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/**
 * Instantiate one of our modules (base64 binaries: one importing a plain memory, one a shared memory) against
 * `host`'s memory. Null when it cannot run there (no WebAssembly SIMD, or a memory the module cannot import):
 * callers keep the stock path.
 */
export function instantiateOnBackendMemory(host: WasmMemoryHost, plain: string, sharedBinary: string): BackendMemoryInstance | null {
  const memory = backendMemory(host);
  if (!wasmApi || !(memory instanceof wasmApi.Memory)) return null;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  try {
    const module = new wasmApi.Module(decode(shared ? sharedBinary : plain));
    return { exports: new wasmApi.Instance(module, { env: { memory } }).exports, module, shared };
  } catch {
    return null;
  }
}
