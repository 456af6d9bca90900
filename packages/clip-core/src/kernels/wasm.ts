import * as tf from '@tensorflow/tfjs-core';
import { gemmFor, type GemmHost } from './wasm-gemm.js';

/**
 * Replacements for two tfjs-backend-wasm (4.22) kernels that are slow on the shapes transformers use.
 *
 * - BatchMatMul: wasm sends a matmul to XNNPACK only when it is 2-D in effect (batch 1) with no transposed
 *   operand; everything else (attention's [batch·heads, seq, d] products, autodiff's transposed
 *   operands) runs a naive triple loop at ~1.5 GFLOP/s instead of ~15–35. Batched products (batch > 1) run
 *   our own SIMD GEMM (wasm-gemm.ts) in place on the heap: transposes and a broadcast batch are strides, and
 *   nothing is created per entry. Before it, they ran one XNNPACK matmul per batch entry (still the path
 *   when the GEMM cannot instantiate): at 0.5–0.7× a square matMul on one thread, because XNNPACK creates
 *   and packs an operator (~0.1 ms) for every right-hand matrix of a ~0.2 ms entry; ours measured
 *   0.8–1.2× (attention's shapes, 1 thread, loaded machine). 2-D products with a transposed operand
 *   transpose it explicitly (a fast copy) and run XNNPACK on views into the operands' heap memory: no
 *   slicing, no copies. Plain 2-D products stay on the stock kernel: against a square matMul of the same FLOPs (bench task `matmuls`) they run at full rate, long K included — splitting K
 *   into blocks measured slower. Transposing entry by entry into a cache-sized scratch matrix instead of
 *   the whole tensor was tried and measured no faster (CPU time, against an unchanged control product).
 * - Slice: wasm copies the WHOLE input out of the heap (readSync) before copying the slice, so cutting a
 *   [b, seq, d] activation into b pieces costs b full copies. The replacement reads the heap in place.
 *
 * Both lean on the backend's internals (heap offsets, tensor registration), so they check what they use
 * and fall back to the stock kernel for anything unusual (other dtypes, broadcasting of several batch dims).
 */

interface WasmTensorData {
  id: number;
  memoryOffset: number;
}

interface WasmModule extends GemmHost {
  HEAPU8: Uint8Array;
  cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
    getThreadsCount?(): number;
  };
}

interface WasmBackend {
  wasm: WasmModule;
  dataIdNextNumber: number;
  dataIdMap: { get(dataId: object): WasmTensorData | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

function isWasmBackend(backend: unknown): backend is WasmBackend {
  const b = backend as Partial<WasmBackend>;
  return (
    typeof b.makeOutput === 'function' &&
    typeof b.dataIdNextNumber === 'number' &&
    typeof b.wasm?.cwrap === 'function' &&
    typeof b.wasm.tfjs?.registerTensor === 'function' &&
    typeof b.wasm.tfjs.disposeData === 'function'
  );
}

/**
 * The heap as it is now. The threaded build's heap is a growable SharedArrayBuffer; a growth on the main thread
 * refreshes `HEAPU8`, but one made by a pool thread leaves it the old, shorter buffer until the glue's own JS
 * next looks. The memory object always hands out the current buffer.
 */
function heapBuffer(wasm: WasmModule): ArrayBufferLike {
  return wasm.wasmMemory?.buffer ?? wasm.HEAPU8.buffer;
}

const shapeBytes = (shape: number[]): Uint8Array => new Uint8Array(new Int32Array(shape).buffer);

function transposeLastTwo(t: tf.TensorInfo, backend: WasmBackend, transpose: tf.KernelFunc): tf.TensorInfo {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return transpose({ inputs: { x: t }, backend: backend as unknown as tf.KernelBackend, attrs: { perm } }) as tf.TensorInfo;
}

/**
 * Which path batched products take: 'gemm' (ours; the default wherever it instantiates; on the threaded build
 * under Node it splits the batch over a pool of its own threads, see wasm-gemm.ts) or 'xnnpack' (one XNNPACK
 * product per batch entry, on the backend's thread pool). Even on one thread ours measured 4–6× faster than
 * the per-entry path on 2 threads of a loaded 2-core machine (the pool's dispatch per ~5 MFLOP entry stalls
 * when the cores are shared); on a quiet one the per-entry path measured 24–36 GFLOP/s on 2 threads, ours
 * 25–30 on one. Tests and the bench pin a path.
 */
export type BatchedMatMulPath = 'gemm' | 'xnnpack';
let batchedPath: BatchedMatMulPath = 'gemm';
export function setBatchedMatMulPath(path: BatchedMatMulPath): void {
  batchedPath = path;
}

function makeBatchMatMul(stock: tf.KernelFunc, transpose: tf.KernelFunc): tf.KernelFunc {
  let wasmMatMul: ((...args: unknown[]) => void) | undefined;
  let boundTo: WasmModule | undefined;
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const backend = args.backend as unknown;
    if (!isWasmBackend(backend) || a.dtype !== 'float32' || b.dtype !== 'float32') return stock(args);
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA);
    const batchB = tf.util.sizeFromShape(outerB);
    const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
    // Stock kernel already takes the XNNPACK path for a plain 2-D product.
    if (batchA === 1 && batchB === 1 && !transposeA && !transposeB) return stock(args);
    if (!sameOuter && batchA !== 1 && batchB !== 1) return stock(args);

    const rank = (t: tf.TensorInfo) => t.shape.length;
    const m = a.shape[rank(a) - (transposeA ? 1 : 2)] as number;
    const k = a.shape[rank(a) - (transposeA ? 2 : 1)] as number;
    const n = b.shape[rank(b) - (transposeB ? 2 : 1)] as number;
    const kB = b.shape[rank(b) - (transposeB ? 1 : 2)] as number;
    // tfjs checks this inside each backend's kernel, not in the op: unchecked, a mismatch reads past an operand.
    if (k !== kB) {
      throw new Error(
        `Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ${a.shape} and ${b.shape} and ` +
          `transposeA=${transposeA} and transposeB=${transposeB} must match.`,
      );
    }

    const offsetOf = (t: tf.TensorInfo): number => {
      const data = backend.dataIdMap.get(t.dataId);
      if (!data) throw new Error('wasm BatchMatMul: operand has no heap data');
      return data.memoryOffset;
    };
    const gemm = batchedPath === 'gemm' ? gemmFor(backend.wasm) : null;
    if (gemm && Math.max(batchA, batchB) > 1 && m > 0 && k > 0 && n > 0) {
      const out = backend.makeOutput([...(batchA >= batchB ? outerA : outerB), m, n], 'float32');
      try {
        gemm({
          a: offsetOf(a), b: offsetOf(b), c: offsetOf(out), batch: Math.max(batchA, batchB), m, k, n,
          aBatchStride: batchA === 1 ? 0 : m * k, bBatchStride: batchB === 1 ? 0 : k * n,
          // A transposed is stored [k, m], B transposed [n, k]: the same matrices read with swapped strides.
          aRowStride: transposeA ? 1 : k, aColStride: transposeA ? m : 1,
          bRowStride: transposeB ? 1 : n, bColStride: transposeB ? k : 1,
        });
      } catch (err) {
        backend.disposeData(out.dataId); // a pool thread failed (GemmWorkerError): no half-written output leaks
        throw err;
      }
      return out;
    }

    if (boundTo !== backend.wasm) {
      wasmMatMul = backend.wasm.cwrap('BatchMatMul', null, [
        'number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number',
      ]);
      boundTo = backend.wasm;
    }
    const call = wasmMatMul as (...args: unknown[]) => void;
    const registry = backend.wasm.tfjs;
    const view = (offset: number, size: number): number => {
      const id = backend.dataIdNextNumber++;
      registry.registerTensor(id, size, offset);
      return id;
    };

    /** left [batchL, rows, k] · right [batchR, k, cols], both plain, one of the batches 1 or both equal. */
    const plain = (left: tf.TensorInfo, right: tf.TensorInfo, batchL: number, batchR: number, rows: number, cols: number, shape: number[]) => {
      const out = backend.makeOutput(shape, 'float32');
      const [lOff, rOff, oOff] = [offsetOf(left), offsetOf(right), offsetOf(out)];
      const batch = Math.max(batchL, batchR);
      const run = (l: number, r: number, o: number, lRows: number) => {
        const ids = [view(l, lRows * k), view(r, k * cols), view(o, lRows * cols)];
        call(ids[0], shapeBytes([1, lRows, k]), 3, ids[1], shapeBytes([1, k, cols]), 3, 0, 0, ids[2]);
        // Disposing the view ids also frees the XNNPACK operator cached on the right-hand view.
        for (const id of ids) registry.disposeData(id);
      };
      if (batchR === 1) {
        run(lOff, rOff, oOff, batch * rows); // one right-hand matrix for all: a single [batch·rows, k] product
      } else {
        const stepL = batchL === 1 ? 0 : rows * k * 4;
        for (let i = 0; i < batch; i++) run(lOff + i * stepL, rOff + i * k * cols * 4, oOff + i * rows * cols * 4, rows);
      }
      return out;
    };

    const temps: tf.TensorInfo[] = [];
    const t = (x: tf.TensorInfo): tf.TensorInfo => {
      const y = transposeLastTwo(x, backend, transpose);
      temps.push(y);
      return y;
    };
    const outer = batchA >= batchB ? outerA : outerB;
    let out: tf.TensorInfo;
    // XNNPACK packs its right-hand operand on every call, so with a transposed operand it can pay to compute
    // Cᵀ = op(B)ᵀ·op(A)ᵀ instead: that packs op(A)ᵀ (k·m values) rather than op(B) (k·n), and an operand
    // stored transposed is already in the layout it needs (no copy).
    const swap = (transposeA && transposeB) || (transposeA !== transposeB && m < n);
    if (swap) {
      const outT = plain(transposeB ? b : t(b), transposeA ? a : t(a), batchB, batchA, n, m, [...outer, n, m]);
      temps.push(outT);
      out = transposeLastTwo(outT, backend, transpose);
    } else {
      out = plain(transposeA ? t(a) : a, transposeB ? t(b) : b, batchA, batchB, m, n, [...outer, m, n]);
    }
    for (const x of temps) backend.disposeData(x.dataId);
    return out;
  };
}

function makeSlice(stock: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size?: number | number[] };
    const backend = args.backend as unknown;
    if (!isWasmBackend(backend) || x.dtype === 'string' || x.dtype === 'complex64') return stock(args);
    const [begin_, size_] = tf.slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
    const out = backend.makeOutput(size_, x.dtype);
    // Typed views are taken after makeOutput, whose allocation may grow (and so detach) the heap.
    const heap = (t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array => {
      const data = backend.dataIdMap.get(t.dataId);
      if (!data) throw new Error('wasm Slice: tensor has no heap data');
      const n = tf.util.sizeFromShape(t.shape);
      const buffer = heapBuffer(backend.wasm);
      if (t.dtype === 'float32') return new Float32Array(buffer, data.memoryOffset, n);
      if (t.dtype === 'int32') return new Int32Array(buffer, data.memoryOffset, n);
      return new Uint8Array(buffer, data.memoryOffset, n);
    };
    const xVals = heap(x);
    const outVals = heap(out);
    const strides = tf.util.computeStrides(x.shape);
    if (tf.slice_util.isSliceContinous(x.shape, begin_, size_)) {
      const start = tf.slice_util.computeFlatOffset(begin_, strides);
      outVals.set(xVals.subarray(start, start + outVals.length));
      return out;
    }
    // Copy runs along the last axis, walking the outer indices like an odometer.
    const r = x.shape.length;
    const run = size_[r - 1] as number;
    const idx = new Array<number>(r - 1).fill(0);
    for (let o = 0; o < outVals.length; o += run) {
      let src = begin_[r - 1] as number;
      for (let d = 0; d < r - 1; d++) src += ((begin_[d] as number) + (idx[d] as number)) * (strides[d] as number);
      outVals.set(xVals.subarray(src, src + run), o);
      for (let d = r - 2; d >= 0; d--) {
        idx[d] = (idx[d] as number) + 1;
        if ((idx[d] as number) < (size_[d] as number)) break;
        idx[d] = 0;
      }
    }
    return out;
  };
}

function override(name: string, make: (stock: tf.KernelFunc) => tf.KernelFunc): void {
  const stock = tf.getKernel(name, 'wasm');
  if (!stock) return;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...stock, kernelName: name, backendName: 'wasm', kernelFunc: make(stock.kernelFunc) });
}

/** Install the replacements on the wasm backend (called once, after it initialised). */
export function registerWasmKernelOverrides(): void {
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!transpose) return;
  override('BatchMatMul', (stock) => makeBatchMatMul(stock, transpose.kernelFunc));
  override('Slice', makeSlice);
}
