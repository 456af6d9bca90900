import * as tf from '@tensorflow/tfjs-core';
import { ADAM_WASM, ADAM_WASM_SHARED } from './adam-wasm-bytes.js';
import { instantiateOnBackendMemory, type WasmMemoryHost } from './wasm-module.js';

/**
 * In-place element-wise updates for the optimizer and the chunked step's gradient sum (PyTorch's "fused"
 * Adam idea): one pass over the tensors' own storage, no intermediate tensors. The tensor path of an Adam
 * update holds ~13 whole-size intermediates at once (for DistilBERT's 30522×768 embedding ≈ 1.2 GB), which is
 * what stops the reference's towers from taking a second step inside wasm's 4 GB.
 *
 * wasm: a WebAssembly SIMD module (text and generator in scripts/adam-wasm.mjs) instantiated against the
 * backend's own Memory, as wasm-gemm.ts does; it runs on the calling thread. cpu: a JS loop on the backend's
 * Float32Arrays. Other backends (webgl, tfjs-node): not supported, the caller keeps its tensor path.
 * Every value is rounded to float32 after each operation in the tensor path's order (f32x4 add/mul/div/sqrt are
 * correctly rounded), so the results are bit-identical to those tensor ops on the same backend.
 *
 * In place is only safe when nothing else sees the storage. tfjs shares one dataId between a tensor and its
 * clones, reshapes, and the tensors assigned to a variable; both backends count those references, and a
 * count above 1 refuses the update (the caller then takes the tensor path, which gives the variable new
 * storage and leaves the other holders their values). The cpu backend can also share an array between
 * DIFFERENT dataIds (a slice is a subarray view; tf.tensor keeps the caller's array), which no count shows:
 * there the weights get a new array each update, and moments and sums are copied once into an array of our
 * own before they are first written in place.
 */

/** The Adam/AdamW coefficients of one parameter's update, as float64 numbers; each is rounded to float32 once. */
export interface AdamCoefficients {
  beta1: number;
  /** 1 − beta1 */
  oneMinusBeta1: number;
  beta2: number;
  /** 1 − beta2 */
  oneMinusBeta2: number;
  /** sqrt(1 − beta2^t) */
  bc2Sqrt: number;
  eps: number;
  /** lr / (1 − beta1^t) */
  stepSize: number;
  /** Adam's L2 decay, added to the gradient as w·l2 (0: none). */
  l2: number;
  /** AdamW's decoupled decay factor 1 − lr·wd the weight is multiplied by first (1: none). */
  decay: number;
}

/** The tensors of one update: `param` gets new values (on wasm in new storage), `m` and `v` are written in place; `grad` is read. */
export interface AdamTensors {
  param: tf.Variable;
  grad: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
}

type AdamExport = (w: number, g: number, m: number, v: number, n: number, ...coefficients: number[]) => void;
interface AdamModule {
  adam_plain: AdamExport;
  adam_l2: AdamExport;
  adam_decoupled: AdamExport;
  add(dst: number, src: number, n: number): void;
}

interface WasmBackendLike {
  wasm: WasmMemoryHost;
  dataIdMap: { get(dataId: object): { memoryOffset: number | null } | undefined };
}
interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } | undefined };
}

const modules = new WeakMap<WasmMemoryHost, AdamModule | null>();

function wasmModule(host: WasmMemoryHost): AdamModule | null {
  let mod = modules.get(host);
  if (mod === undefined) {
    mod = (instantiateOnBackendMemory(host, ADAM_WASM, ADAM_WASM_SHARED)?.exports as AdamModule | undefined) ?? null;
    modules.set(host, mod);
  }
  return mod;
}

/** Float32Arrays this module allocated on the cpu backend: nothing outside can hold a view of them. */
const ownArrays = new WeakSet<Float32Array>();

type Target = { kind: 'wasm'; backend: WasmBackendLike; mod: AdamModule } | { kind: 'cpu'; backend: CpuBackendLike };

/** The backend the fused updates can run on, or null (another backend, or its wasm module would not load). */
function target(): Target | null {
  const name = tf.getBackend();
  if (name === 'wasm') {
    const backend = tf.backend() as unknown as Partial<WasmBackendLike>;
    if (!backend.wasm || typeof backend.dataIdMap?.get !== 'function') return null;
    const mod = wasmModule(backend.wasm);
    return mod ? { kind: 'wasm', backend: backend as WasmBackendLike, mod } : null;
  }
  if (name === 'cpu') {
    const backend = tf.backend() as unknown as Partial<CpuBackendLike>;
    return typeof backend.data?.get === 'function' ? { kind: 'cpu', backend: backend as CpuBackendLike } : null;
  }
  return null;
}

/** Whether the active backend runs the fused updates (wasm with SIMD, cpu). */
export function fusedUpdatesSupported(): boolean {
  return target() !== null;
}

/** float32, on the active backend, and (when `written`) referenced by nothing but this one tensor. */
function usable(t: tf.Tensor, size: number, written: boolean): boolean {
  if (t.dtype !== 'float32' || t.size !== size || t.isDisposed) return false;
  const count = tf.backend().refCount(t.dataId);
  return written ? count === 1 : count >= 1;
}

function heapOffset(backend: WasmBackendLike, t: tf.Tensor): number | null {
  const offset = backend.dataIdMap.get(t.dataId)?.memoryOffset;
  return typeof offset === 'number' ? offset : null;
}

function cpuData(backend: CpuBackendLike, t: tf.Tensor): { values?: unknown } | undefined {
  return backend.data.get(t.dataId);
}

/** The cpu backend's array for `t`, first replaced by a copy of our own when it may be shared (see the top). */
function ownedCpuArray(backend: CpuBackendLike, t: tf.Tensor): Float32Array | null {
  const data = cpuData(backend, t);
  if (!data || !(data.values instanceof Float32Array)) return null;
  if (!ownArrays.has(data.values)) {
    data.values = Float32Array.from(data.values);
    ownArrays.add(data.values as Float32Array);
  }
  return data.values as Float32Array;
}

const f32 = Math.fround;

/**
 * One Adam/AdamW step over plain arrays: reads `w` and `grad`, updates `m` and `v` in place and writes the new
 * weights to `out` (which may be `w`). Every value is rounded to float32 after each operation, in the order of
 * AdamOptimizer's tensor ops, so the result is bit-identical to them on the cpu backend. The cpu fused path
 * and HostAdamOptimizer (moments in JS memory) both run it.
 */
export function adamUpdateArrays(w: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, out: Float32Array, c: AdamCoefficients): void {
  const b1 = f32(c.beta1);
  const c1 = f32(c.oneMinusBeta1);
  const b2 = f32(c.beta2);
  const c2 = f32(c.oneMinusBeta2);
  const bc2 = f32(c.bc2Sqrt);
  const eps = f32(c.eps);
  const step = f32(c.stepSize);
  const l2 = f32(c.l2);
  const decay = f32(c.decay);
  const useL2 = c.l2 !== 0;
  const useDecay = !useL2 && c.decay !== 1;
  for (let i = 0; i < w.length; i++) {
    const wi = w[i] as number;
    const g = useL2 ? f32((grad[i] as number) + f32(wi * l2)) : (grad[i] as number);
    const mi = f32(f32((m[i] as number) * b1) + f32(g * c1));
    const vi = f32(f32((v[i] as number) * b2) + f32(f32(g * g) * c2));
    const denom = f32(f32(f32(Math.sqrt(vi)) / bc2) + eps);
    const base = useDecay ? f32(wi * decay) : wi;
    m[i] = mi;
    v[i] = vi;
    out[i] = f32(base - f32(f32(mi / denom) * step));
  }
}

/**
 * One Adam/AdamW step for one parameter in place: `param`, `m`, `v` get their new values, bit-identical to
 * AdamOptimizer's tensor ops on the same backend. Returns false, changing nothing, when it cannot run here (a
 * backend other than wasm or cpu, non-float32 or mismatched sizes, or storage shared with another tensor); the
 * caller then runs its tensor path. Creates no tensors; `grad` is only read. Call it outside a gradient tape.
 */
export function fusedAdamUpdate(t: AdamTensors, c: AdamCoefficients): boolean {
  const size = t.param.size;
  if (size === 0 || !usable(t.param, size, true) || !usable(t.m, size, true) || !usable(t.v, size, true) || !usable(t.grad, size, false)) return false;
  const where = target();
  if (!where) return false;
  if (where.kind === 'wasm') {
    const offsets = [t.grad, t.m, t.v].map((x) => heapOffset(where.backend, x));
    if (offsets.some((o) => o === null)) return false;
    const [g, m, v] = offsets as number[];
    // tfjs-backend-wasm's XNNPACK matmul and conv keep a packed copy of a weight operand keyed by its tensor id,
    // so a weight must never change in place (the next forward pass would use the old values): the update
    // runs on an exact copy in new storage (×1 keeps −0 and NaN), which the variable takes; freeing the old
    // storage drops the packed copy.
    const next = tf.tidy(() => tf.mul(t.param, 1));
    const w = heapOffset(where.backend, next);
    if (w === null) {
      next.dispose();
      return false;
    }
    const fn = c.l2 !== 0 ? where.mod.adam_l2 : c.decay !== 1 ? where.mod.adam_decoupled : where.mod.adam_plain;
    fn(w, g as number, m as number, v as number, size, c.beta1, c.oneMinusBeta1, c.beta2, c.oneMinusBeta2, c.bc2Sqrt, c.eps, c.stepSize, c.l2, c.decay);
    t.param.assign(next);
    next.dispose();
    return true;
  }
  const wData = cpuData(where.backend, t.param);
  const gData = cpuData(where.backend, t.grad);
  if (!(wData?.values instanceof Float32Array) || !(gData?.values instanceof Float32Array)) return false;
  const m = ownedCpuArray(where.backend, t.m);
  const v = ownedCpuArray(where.backend, t.v);
  if (!m || !v) return false;
  // A new array for the weight: slices of a weight are views of its array on cpu (see the top).
  const w = new Float32Array(size);
  adamUpdateArrays(wData.values, gData.values, m, v, w, c);
  wData.values = w;
  ownArrays.add(w);
  return true;
}

/**
 * `sum += more` in place (bit-identical to tf.add on the same backend). Returns false, changing nothing, when
 * it cannot run here (see fusedAdamUpdate); the caller then adds with tensors. `more` is only read.
 */
export function addInPlace(sum: tf.Tensor, more: tf.Tensor): boolean {
  const size = sum.size;
  if (size === 0 || !usable(sum, size, true) || !usable(more, size, false) || sum.dataId === more.dataId) return false;
  const where = target();
  if (!where) return false;
  if (where.kind === 'wasm') {
    const dst = heapOffset(where.backend, sum);
    const src = heapOffset(where.backend, more);
    if (dst === null || src === null) return false;
    where.mod.add(dst, src, size);
    return true;
  }
  const src = cpuData(where.backend, more)?.values;
  if (!(src instanceof Float32Array)) return false;
  const dst = ownedCpuArray(where.backend, sum);
  if (!dst) return false;
  for (let i = 0; i < size; i++) dst[i] = (dst[i] as number) + (src[i] as number);
  return true;
}
