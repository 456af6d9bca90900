import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CheckpointError,
  ConfigError,
  ProjectionHead,
  initBackend,
  type SafetensorsFile,
  type TensorData,
} from '../src/index.js';
import { readSafetensors } from '../src/node.js';

// Reference: real torch.nn modules (fixtures/projection-head/make_heads.py), float32.
const FIXTURE = fileURLToPath(new URL('./fixtures/projection-head/heads.safetensors', import.meta.url));
let ref: SafetensorsFile;

function sub(prefix: string): Map<string, TensorData> {
  const out = new Map<string, TensorData>();
  for (const [k, v] of ref.tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

beforeAll(async () => {
  await initBackend('cpu');
  ref = await readSafetensors(FIXTURE);
});

describe('ProjectionHead', () => {
  for (const kind of ['linear', 'mlp'] as const) {
    it(`${kind}: matches PyTorch (eval) within 1e-5, and its stateDict round-trips in PyTorch layout`, () => {
      const head = new ProjectionHead({ inputDim: 12, projectionDim: 6, kind, seed: 1 });
      const weights = sub(`${kind}/`);
      weights.delete('out');
      head.loadStateDict(weights, 'heads.safetensors');
      expect(head.namedVariables().map((v) => v.name).sort()).toEqual([...weights.keys()].sort());

      const x = tf.tensor2d(ref.tensors.get('x')?.data as Float32Array, [3, 12]);
      const y = head.apply(x);
      expect(y.shape).toEqual([3, 6]);
      const want = ref.tensors.get(`${kind}/out`)?.data as Float32Array;
      const got = y.dataSync();
      for (let i = 0; i < want.length; i++) expect(Math.abs((got[i] as number) - (want[i] as number))).toBeLessThan(1e-5);

      const state = head.stateDict();
      for (const [k, t] of state) {
        expect(t.shape, k).toEqual(weights.get(k)?.shape);
        expect(Array.from(t.dataSync()), k).toEqual(Array.from(weights.get(k)?.data ?? []));
      }
      tf.dispose([x, y, ...state.values()]);
      head.dispose();
    });
  }

  it('mlp dropout is active only in training, and varies between calls', () => {
    const head = new ProjectionHead({ inputDim: 8, projectionDim: 16, kind: 'mlp', dropout: 0.5, seed: 3 });
    const x = tf.randomNormal([4, 8], 0, 1, 'float32', 5) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const [a, b, c, d] = [head.apply(x), head.apply(x), head.apply(x, { training: true }), head.apply(x, { training: true })];
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(Array.from(c.dataSync())).not.toEqual(Array.from(a.dataSync()));
    expect(Array.from(c.dataSync())).not.toEqual(Array.from(d.dataSync()));
    tf.dispose([a, b, c, d]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    head.dispose();
  });

  it('same seed → same weights; names and noDecay flags', () => {
    const a = new ProjectionHead({ inputDim: 5, projectionDim: 3, seed: 9 });
    const b = new ProjectionHead({ inputDim: 5, projectionDim: 3, seed: 9 });
    const va = a.namedVariables();
    expect(va.map((v) => [v.name, v.noDecay])).toEqual([
      ['linear.weight', false],
      ['linear.bias', true],
      ['layer_norm.weight', true],
      ['layer_norm.bias', true],
    ]);
    b.namedVariables().forEach((v, i) => expect(Array.from(v.variable.dataSync())).toEqual(Array.from(va[i]?.variable.dataSync() ?? [])));
    expect(a.trainableVariables()).toHaveLength(4);
    a.dispose();
    b.dispose();
  });

  it('bad options → ConfigError; missing or mis-shaped weights → CheckpointError naming source and key', () => {
    expect(() => new ProjectionHead({ inputDim: 0 })).toThrow(ConfigError);
    expect(() => new ProjectionHead({ inputDim: 4, dropout: 1 })).toThrow(/dropout/);
    const head = new ProjectionHead({ inputDim: 12, projectionDim: 6 });
    const weights = sub('linear/');
    weights.delete('layer_norm.bias');
    expect(() => head.loadStateDict(weights, 'm.safetensors')).toThrow(CheckpointError);
    expect(() => head.loadStateDict(weights, 'm.safetensors')).toThrow(/m\.safetensors: missing weights: layer_norm\.bias/);
    const wrong = sub('linear/');
    wrong.set('linear.weight', { storedDtype: 'F32', dtype: 'float32', shape: [12, 6], data: new Float32Array(72) });
    expect(() => head.loadStateDict(wrong, 'm.safetensors')).toThrow(/'linear\.weight' has shape \[12, 6\], expected \[6, 12\]/);
    head.dispose();
  });
});
