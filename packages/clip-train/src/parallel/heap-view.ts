import * as tf from '@tensorflow/tfjs-core';

/** The two public methods of tfjs-backend-wasm's BackendWasm used here (duck-typed: no import of the backend). */
interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  refCount(dataId: tf.DataId): number;
}

function heapBackend(): HeapBackend | undefined {
  const b = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof b.typedArrayFromHeap === 'function' && typeof b.refCount === 'function' ? (b as HeapBackend) : undefined;
}

/**
 * A Float32Array VIEW of a float32 tensor's storage in the wasm heap, or undefined when the backend is not
 * wasm (or the tensor is not stored there). It avoids dataSync's copy when the values only pass through to
 * shared memory: every step moves all trainable weights and gradients (tens of MB) between replicas.
 * The view aliases the tensor: use it before the next tfjs call (an allocation may grow and move the heap)
 * and never keep it.
 */
export function heapView(t: tf.Tensor): Float32Array | undefined {
  const b = heapBackend();
  if (!b || t.dtype !== 'float32' || b.refCount(t.dataId) === 0) return undefined;
  return b.typedArrayFromHeap(t) as Float32Array;
}

/**
 * Whether tf.tensor(values) copies `values` at once (wasm copies into its heap) rather than keeping the
 * array (cpu keeps it). A view of a shared buffer that is rewritten next step may only be passed when it does.
 */
export function tensorCopiesValues(): boolean {
  return heapBackend() !== undefined;
}
