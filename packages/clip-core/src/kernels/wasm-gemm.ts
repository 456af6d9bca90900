import { GEMM_MR, GEMM_WASM, GEMM_WASM_SHARED } from './gemm-wasm-bytes.js';

/**
 * A batched f32 GEMM (WebAssembly SIMD, 4×8 register tiles; text and generator in scripts/gemm-wasm.mjs) that
 * runs on tfjs-backend-wasm's own memory: instantiated against the backend's Memory object, it reads the
 * operands and writes the product where tfjs keeps them, with no copies. Transposed operands and a broadcast
 * batch are just strides, so attention's products need neither transposes nor per-entry XNNPACK operators
 * (XNNPACK creates and packs one operator per right-hand matrix, ~0.1 ms each against ~0.2 ms of work per
 * [197,64]·[64,197] entry). It runs on the calling thread only.
 */

// Typed by hand: the repo compiles against Node's lib, which declares no WebAssembly JS API.
interface WasmMemory {
  buffer: ArrayBufferLike;
}
interface WasmApi {
  Memory: abstract new (...args: never[]) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const { WebAssembly: wasmApi, atob: decodeBase64 } = globalThis as unknown as { WebAssembly?: WasmApi; atob: (s: string) => string };

/** The parts of the backend's Emscripten module this needs. */
export interface GemmHost {
  /** The threaded build's (shared) memory. */
  wasmMemory?: WasmMemory;
  /** The single-threaded build's exports (its memory is exported there). */
  asm?: { memory?: WasmMemory };
  _malloc?(bytes: number): number;
  _free?(ptr: number): void;
}

/** Strides are in floats; a batch stride of 0 reuses one matrix for every entry. */
export interface GemmCall {
  a: number;
  b: number;
  c: number;
  batch: number;
  m: number;
  k: number;
  n: number;
  aBatchStride: number;
  bBatchStride: number;
  aRowStride: number;
  aColStride: number;
  bRowStride: number;
  bColStride: number;
}

type GemmExport = (...args: number[]) => void;

interface Instance {
  gemm: GemmExport;
  malloc(bytes: number): number;
  free(ptr: number): void;
  /** A scratch block kept between calls (packed operand panels), 16-byte aligned start. */
  scratch: { ptr: number; bytes: number };
}

const instances = new WeakMap<GemmHost, Instance | null>();

function decode(base64: string): Uint8Array {
  const text = decodeBase64(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function instantiate(host: GemmHost): Instance | null {
  const memory = host.wasmMemory ?? host.asm?.memory;
  const { _malloc: malloc, _free: free } = host;
  if (!wasmApi || !(memory instanceof wasmApi.Memory) || typeof malloc !== 'function' || typeof free !== 'function') return null;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  try {
    const module = new wasmApi.Module(decode(shared ? GEMM_WASM_SHARED : GEMM_WASM));
    const { gemm } = new wasmApi.Instance(module, { env: { memory } }).exports as { gemm: GemmExport };
    return { gemm, malloc: malloc.bind(host), free: free.bind(host), scratch: { ptr: 0, bytes: 0 } };
  } catch {
    // No WebAssembly SIMD here, or a memory this module cannot import: callers keep the stock path.
    return null;
  }
}

/** The GEMM bound to `host`'s memory, or null when it cannot run there. Instantiated once per module. */
export function gemmFor(host: GemmHost): ((call: GemmCall) => void) | null {
  let inst = instances.get(host);
  if (inst === undefined) {
    inst = instantiate(host);
    instances.set(host, inst);
  }
  if (!inst) return null;
  const it = inst;
  return (call: GemmCall) => {
    const { m, k, n } = call;
    const floats = Math.ceil(m / GEMM_MR) * GEMM_MR * k + Math.ceil(n / 8) * 8 * k + GEMM_MR * 8;
    const bytes = floats * 4 + 16;
    if (it.scratch.bytes < bytes) {
      if (it.scratch.ptr) it.free(it.scratch.ptr);
      const ptr = it.malloc(bytes);
      if (!ptr) throw new Error(`wasm GEMM: could not allocate ${bytes} bytes of scratch`);
      it.scratch = { ptr, bytes };
    }
    const scratch = Math.ceil(it.scratch.ptr / 16) * 16; // not `& ~15`: offsets may pass 2³¹
    it.gemm(
      call.a, call.b, call.c, scratch, call.batch, m, k, n,
      call.aBatchStride, call.bBatchStride, call.aRowStride, call.aColStride, call.bRowStride, call.bColStride,
    );
  };
}
