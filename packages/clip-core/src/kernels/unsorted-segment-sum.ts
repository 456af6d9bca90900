import * as tf from '@tensorflow/tfjs-core';

/**
 * UnsortedSegmentSum for tfjs-backend-wasm, which (4.22) has none. The gradient of `gather` — i.e. of
 * every embedding lookup — is an UnsortedSegmentSum of the upstream gradient rows into the table, so
 * without this DistilBERT cannot train on wasm. A one-hot matmul would also work but is
 * [tokens × vocab] (30522 wide): far bigger than the sum itself.
 *
 * Semantics (TF's): out[s, ...] = Σ_{i: ids[i] = s} x[i, ...]; ids outside [0, numSegments) are dropped.
 * Runs in JS on the tensors' host copies: the work is one pass over x, the output one allocation.
 */

/** The sum itself, on plain arrays; exported for tests. `inner` = elements per segment row. */
export function unsortedSegmentSumValues(
  x: ArrayLike<number>,
  ids: ArrayLike<number>,
  numSegments: number,
  inner: number,
  out: Float32Array | Int32Array,
): void {
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i] as number;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] = (out[dst + j] as number) + (x[src + j] as number);
  }
}

interface HostBackend {
  readSync(dataId: object): ArrayLike<number>;
}
interface WasmBackend extends HostBackend {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array | Int32Array): tf.TensorInfo;
}
interface CpuBackend extends HostBackend {
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array | Int32Array): tf.TensorInfo;
}

function compute({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): { shape: number[]; dtype: 'int32' | 'float32'; out: Float32Array | Int32Array } {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const b = backend as unknown as HostBackend;
  const idCount = segmentIds.shape.reduce((a, d) => a * d, 1);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = innerShape.reduce((a, d) => a * d, 1);
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  if (idCount > 0) unsortedSegmentSumValues(b.readSync(x.dataId), b.readSync(segmentIds.dataId), numSegments, inner, out);
  return { shape: [numSegments, ...innerShape], dtype: x.dtype === 'int32' ? 'int32' : 'float32', out };
}

function unsortedSegmentSum(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { shape, dtype, out } = compute(args);
  return (args.backend as unknown as WasmBackend).makeOutput(shape, dtype, undefined, out);
}

function unsortedSegmentSumCpu(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { shape, dtype, out } = compute(args);
  return (args.backend as unknown as CpuBackend).makeTensorInfo(shape, dtype, out);
}

/** Register the kernel on wasm unless the installed tfjs-backend-wasm already has one. */
export function registerUnsortedSegmentSumWasm(): void {
  if (tf.getKernel(tf.UnsortedSegmentSum, 'wasm')) return;
  tf.registerKernel({ kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSum });
}

/**
 * Replace tfjs-backend-cpu's kernel, which runs a masked sum per segment (numSegments tensor ops): at
 * DistilBERT's vocab of 30522 one embedding gradient took ~20 s; this single pass takes milliseconds.
 */
export function registerUnsortedSegmentSumCpu(): void {
  if (tf.getKernel(tf.UnsortedSegmentSum, 'cpu')) tf.unregisterKernel(tf.UnsortedSegmentSum, 'cpu');
  tf.registerKernel({ kernelName: tf.UnsortedSegmentSum, backendName: 'cpu', kernelFunc: unsortedSegmentSumCpu });
}
