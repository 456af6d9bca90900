import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { initBackend, type NamedVariable, type TensorData } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';

export const BACKENDS = ['cpu', 'wasm'] as const;

/** Vendored HF-layout fixture dir (copied from shared/fixtures, or made by test/gen/make_variants.py). */
export function fixtureDir(name: string): string {
  return fileURLToPath(new URL(`./fixtures/hf/${name}`, import.meta.url));
}

export async function readIO(name: string): Promise<Map<string, TensorData>> {
  return (await readSafetensors(`${fixtureDir(name)}/io.safetensors`)).tensors;
}

export function toTensor(t: TensorData | undefined): tf.Tensor {
  if (!t) throw new Error('missing tensor in io.safetensors');
  return tf.tensor(t.data, t.shape, t.dtype);
}

/** max |a - b| over two tensors of the same shape (shapes checked). */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor | TensorData): number {
  const bData = b instanceof tf.Tensor ? b.dataSync() : b.data;
  const bShape = b instanceof tf.Tensor ? b.shape : b.shape;
  if (a.shape.join(',') !== bShape.join(',')) throw new Error(`shape [${a.shape}] vs [${bShape}]`);
  const aData = a.dataSync();
  let m = 0;
  for (let i = 0; i < aData.length; i++) m = Math.max(m, Math.abs((aData[i] as number) - (bData[i] as number)));
  return m;
}

/** What one training step differentiates: the weights, the loss over them, and how to free the rest. */
export interface GradientCase {
  vars: NamedVariable[];
  loss: () => tf.Scalar;
  dispose: () => void;
}

/** name → gradient of the case's loss on `backend` (built after switching to it); checks the step leaks nothing. */
export async function gradientsOn(backend: 'cpu' | 'wasm', build: () => GradientCase): Promise<Map<string, Float32Array>> {
  await initBackend(backend);
  const { vars, loss, dispose } = build();
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(loss, vars.map((v) => v.variable));
  const names = new Map(vars.map((n) => [n.variable.name, n.name]));
  const out = new Map<string, Float32Array>();
  for (const [k, g] of Object.entries(grads)) out.set(names.get(k)!, new Float32Array(g.dataSync()));
  tf.dispose([value, ...Object.values(grads)]);
  expect(tf.memory().numTensors).toBe(before);
  dispose();
  return out;
}

/**
 * wasm's gradients equal cpu's (max abs difference < 1e-4) for exactly `expectedCount` weights; with
 * `nonZero`, every weight also gets a gradient (a dead branch would pass the comparison with zeros).
 */
export function expectSameGradients(wasm: Map<string, Float32Array>, cpu: Map<string, Float32Array>, expectedCount: number, options: { nonZero?: boolean } = {}): void {
  expect([...wasm.keys()].sort()).toEqual([...cpu.keys()].sort());
  expect(cpu.size).toBe(expectedCount);
  for (const [name, c] of cpu) {
    const w = wasm.get(name)!;
    let max = 0;
    let norm = 0;
    for (let i = 0; i < c.length; i++) {
      max = Math.max(max, Math.abs(c[i]! - w[i]!));
      norm = Math.max(norm, Math.abs(c[i]!));
    }
    expect(max, name).toBeLessThan(1e-4);
    if (options.nonZero) expect(norm, `${name} gets a gradient`).toBeGreaterThan(0);
  }
}
