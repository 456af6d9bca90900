import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, CLIPModelConfigSchema, ConfigError, ProjectionHead, initBackend } from '../src/index.js';

/** HF CLIPModel's visual_projection / text_projection: nn.Linear(in, proj, bias=False), nothing else. */
describe("ProjectionHead kind 'linear-no-bias'", () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('is x·Wᵀ with one PyTorch-layout weight [proj, in], decayed', () => {
    const head = new ProjectionHead({ inputDim: 3, projectionDim: 2, kind: 'linear-no-bias', seed: 1 });
    expect(head.namedVariables().map((v) => [v.name, v.noDecay])).toEqual([['weight', false]]);
    const W = [
      [1, -2, 0.5],
      [0, 3, -1],
    ];
    head.loadStateDict(new Map([['weight', { storedDtype: 'F32', dtype: 'float32', shape: [2, 3], data: Float32Array.from(W.flat()) }]]), 'w.safetensors');
    const x = tf.tensor2d([[1, 2, 3], [-1, 0, 4]]);
    const y = head.apply(x, { training: true }); // no dropout, no LayerNorm: training changes nothing
    const want = [[1 - 4 + 1.5, 6 - 3], [-1 + 2, -4]];
    expect(Array.from(y.dataSync())).toEqual(want.flat());
    const sd = head.stateDict();
    expect(sd.get('weight')!.shape).toEqual([2, 3]);
    expect(Array.from(sd.get('weight')!.dataSync())).toEqual(W.flat());
    expect(() => head.loadStateDict(new Map(), 'w.safetensors')).toThrow(CheckpointError);
    tf.dispose([x, y, ...sd.values()]);
    head.dispose();
  });

  it("init is HF's N(0, 1/in); the kind is valid in a clip-ts config, unknown kinds are not", () => {
    const head = new ProjectionHead({ inputDim: 64, projectionDim: 64, kind: 'linear-no-bias', seed: 2 });
    const w = head.stateDict().get('weight')!;
    const values = Array.from(w.dataSync());
    const std = Math.sqrt(values.reduce((s, v) => s + v * v, 0) / values.length);
    expect(Math.abs(std * 8 - 1)).toBeLessThan(0.1);
    w.dispose();
    head.dispose();
    const base = { model_type: 'clip-ts', projection_dim: 4, vision_config: { model_type: 'x' }, text_config: { model_type: 'y' } };
    expect(CLIPModelConfigSchema.parse({ ...base, projection_head: 'linear-no-bias' }).projection_head).toBe('linear-no-bias');
    expect(() => new ProjectionHead({ inputDim: 2, kind: 'conv' as 'linear' })).toThrow(ConfigError);
  });
});
