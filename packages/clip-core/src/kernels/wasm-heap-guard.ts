import { OutOfMemoryError } from '../errors.js';
import { backendMemory, type WasmMemoryHost } from './wasm-module.js';

/**
 * tfjs-backend-wasm does not check `_malloc`'s result, and near wasm32's 4 GB limit the allocator fails in two
 * ways: it returns 0 (the backend then registers the tensor at address 0 and writes it over the module's own
 * data), or — when its size arithmetic wraps past 4 GB — it returns a block that runs off the end of memory.
 * Either way the process fails later and elsewhere (`memory access out of bounds`, `Invalid typed array
 * length`: seen with ViT-base training) or computes with corrupted memory. Wrapping the module's malloc turns
 * both into an OutOfMemoryError at the allocation that does not fit, before anything is written, so the
 * backend's bookkeeping and every existing tensor stay intact.
 */

interface MallocHost extends WasmMemoryHost {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAPU8?: { length: number };
}

const guarded = new WeakSet<object>();

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** The heap's size now: the Memory's own (a HEAPU8 view can lag a growth made on another thread). */
function memoryBytes(host: MallocHost): number | undefined {
  return backendMemory(host)?.buffer.byteLength ?? host.HEAPU8?.length;
}

/** Install the check on `backend`'s Emscripten module (a no-op for other backends and when already installed). */
export function guardWasmHeap(backend: unknown): void {
  const module = (backend as { wasm?: Partial<MallocHost> } | undefined)?.wasm;
  if (!module || typeof module._malloc !== 'function' || typeof module._free !== 'function' || guarded.has(module)) return;
  const host = module as MallocHost;
  // Emscripten's `_malloc` starts as a stub that, on its first call, overwrites the module's property with the
  // raw export: one call first, so the wrapper below is not replaced by it.
  host._free(host._malloc(16));
  const malloc = host._malloc.bind(host);
  host._malloc = (bytes: number): number => {
    const ptr = malloc(bytes);
    if (bytes <= 0) return ptr;
    const size = memoryBytes(host);
    // Pointers past 2 GB come back negative (an i32): compare unsigned, as tfjs does (`>>> 0`).
    const offBounds = size !== undefined && (ptr >>> 0) + bytes > size;
    if (ptr !== 0 && !offBounds) return ptr;
    // An off-the-end block is not freed: free() would read its neighbour past the end of memory.
    throw new OutOfMemoryError(
      `wasm backend: out of memory allocating ${mib(bytes)} (heap ${size === undefined ? 'size unknown' : mib(size)}, at most 4096 MiB); ` +
        'use a smaller batch (data.batchSize) or micro-batch (training.microBatch), turn on training.gradientCheckpointing, ' +
        'or keep the optimizer state on the host (optim.stateOnHost)',
      bytes,
    );
  };
  guarded.add(module);
}
