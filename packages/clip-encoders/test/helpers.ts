import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { TensorData } from '@clip-ts/core';
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
