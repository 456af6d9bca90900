import * as tf from '@tensorflow/tfjs-core';
import type { NamedVariable } from '@clip-ts/core';
import { ParallelError } from './errors.js';
import { heapView, tensorCopiesValues } from './heap-view.js';

/** Where each named weight lives in a flat float32 buffer shared between replicas. */
export interface VariableLayout {
  names: string[];
  shapes: number[][];
  offsets: number[];
  /** Floats in the whole buffer. */
  size: number;
}

/** Lay `vars` out back to back, in the given order (every replica must use the same order). */
export function layoutOf(vars: readonly NamedVariable[]): VariableLayout {
  const names: string[] = [];
  const shapes: number[][] = [];
  const offsets: number[] = [];
  let size = 0;
  for (const { name, variable } of vars) {
    if (variable.dtype !== 'float32') throw new ParallelError(`weight ${name} is ${variable.dtype}; data-parallel training shares float32 weights only`);
    names.push(name);
    shapes.push([...variable.shape]);
    offsets.push(size);
    size += variable.size;
  }
  return { names, shapes, offsets, size };
}

/** A Float32Array over a new SharedArrayBuffer of `floats` elements. */
export function sharedFloats(floats: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(Math.max(1, floats) * Float32Array.BYTES_PER_ELEMENT));
}

/** Copy the named variables' values into `buffer` at their layout offsets (reads each from the device). */
export function writeVariables(layout: VariableLayout, byName: ReadonlyMap<string, tf.Variable>, buffer: Float32Array, only?: ReadonlySet<string>): void {
  layout.names.forEach((name, i) => {
    if (only && !only.has(name)) return;
    const v = byName.get(name);
    if (!v) throw new ParallelError(`weight ${name} is missing from this replica's model`);
    buffer.set(heapView(v) ?? (v.dataSync() as Float32Array), layout.offsets[i] as number);
  });
}

/** Set the variables' values from `buffer` (copied: the buffer is reused next step). */
export function readVariables(layout: VariableLayout, byName: ReadonlyMap<string, tf.Variable>, buffer: Float32Array, only?: ReadonlySet<string>): void {
  layout.names.forEach((name, i) => {
    if (only && !only.has(name)) return;
    const v = byName.get(name);
    const shape = layout.shapes[i] as number[];
    if (!v || v.shape.join(',') !== shape.join(',')) {
      throw new ParallelError(`weight ${name}: shape [${shape.join(', ')}] on the main replica, ${v ? `[${v.shape.join(', ')}]` : 'missing'} here`);
    }
    const start = layout.offsets[i] as number;
    const view = buffer.subarray(start, start + v.size);
    // A new tensor, never an in-place write into the variable's storage: tfjs-backend-wasm caches XNNPACK
    // operators with their weights packed, keyed by tensor, and would keep computing with the old values.
    // The slice keeps the shared buffer, which main rewrites every step, out of a backend that keeps arrays.
    const copies = tensorCopiesValues();
    tf.tidy(() => v.assign(tf.tensor(copies ? view : view.slice(), shape)));
  });
}
