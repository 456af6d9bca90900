/**
 * The Pillow resampling passes of resample.ts in WebAssembly SIMD (wasm/resample-simd.wat; its bytes in
 * resample-simd-wasm.ts): same integer arithmetic, bit-identical output, ~3–4× less CPU than the JS
 * loops (which ran at ~3.5 ms per 500×375 → 224×224 photo and were the pipeline's largest cost).
 * Browser-safe. Where WebAssembly SIMD is missing, `simdResampler()` is null and resample.ts uses JS.
 */
import type { AxisCoeffs } from './resample.js';
import { RESAMPLE_SIMD_WASM_BASE64 } from './resample-simd-wasm.js';

/** Typed by hand: the repo compiles against Node's lib, which declares no WebAssembly JS API. */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const wasm = (globalThis as unknown as {
  WebAssembly?: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object) => { exports: unknown } };
}).WebAssembly;

interface Kernels {
  memory: WasmMemory;
  hpass(src: number, inW: number, inH: number, dst: number, outW: number, starts: number, counts: number, weights: number, stride: number): void;
  vpass(src: number, rowLen: number, dst: number, outH: number, starts: number, counts: number, weights: number, stride: number): void;
}

/** Loads and stores run up to 16 bytes past a buffer's end (see the .wat). */
const SLACK = 16;
const align = (n: number): number => (n + 15) & ~15;

/** One per thread (module state): owns a wasm memory that grows to the largest image seen. */
export class SimdResampler {
  private constructor(private readonly k: Kernels) {}

  static create(): SimdResampler | null {
    try {
      if (!wasm) return null;
      const bytes = Uint8Array.from(atob(RESAMPLE_SIMD_WASM_BASE64), (c) => c.charCodeAt(0));
      const instance = new wasm.Instance(new wasm.Module(bytes));
      return new SimdResampler(instance.exports as unknown as Kernels);
    } catch {
      return null; // no WebAssembly SIMD here
    }
  }

  /**
   * Resize interleaved RGB8 with the given per-axis coefficients (null: that axis keeps its size). Returns
   * a view of this resampler's wasm memory, valid until its next call (copy to keep it).
   */
  resize(src: Uint8Array, inW: number, inH: number, outW: number, outH: number, h: AxisCoeffs | null, v: AxisCoeffs | null): Uint8Array {
    let at = 0;
    const take = (bytes: number): number => {
      const p = at;
      at = align(at + bytes + SLACK);
      return p;
    };
    const coeffs = (c: AxisCoeffs | null) =>
      c && { start: take(c.start.byteLength), count: take(c.count.byteLength), weights: take(c.weights.byteLength), c };
    const hc = coeffs(h);
    const vc = coeffs(v);
    const srcPtr = take(src.length);
    const tmpPtr = h && v ? take(inH * outW * 3) : 0;
    const dstPtr = take(outH * outW * 3);
    const mem = this.k.memory;
    if (at > mem.buffer.byteLength) mem.grow(Math.ceil((at - mem.buffer.byteLength) / 65536));
    const u8 = new Uint8Array(mem.buffer);
    const i32 = new Int32Array(mem.buffer);
    for (const x of [hc, vc]) {
      if (!x) continue;
      i32.set(x.c.start, x.start >> 2);
      i32.set(x.c.count, x.count >> 2);
      i32.set(x.c.weights, x.weights >> 2);
    }
    u8.set(src, srcPtr);
    if (hc) this.k.hpass(srcPtr, inW, inH, vc ? tmpPtr : dstPtr, outW, hc.start, hc.count, hc.weights, hc.c.stride);
    if (vc) {
      const curW = hc ? outW : inW;
      this.k.vpass(hc ? tmpPtr : srcPtr, curW * 3, dstPtr, outH, vc.start, vc.count, vc.weights, vc.c.stride);
    }
    return new Uint8Array(mem.buffer, dstPtr, outH * outW * 3);
  }
}

let shared: SimdResampler | null | undefined;

/** This thread's resampler, or null without WebAssembly SIMD. */
export function simdResampler(): SimdResampler | null {
  if (shared === undefined) shared = SimdResampler.create();
  return shared;
}
