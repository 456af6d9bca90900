import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@clip-ts/core';
import { applyFreeze, buildModel } from '../src/experiment/model.js';
import { parseExperimentConfig } from '../src/config/load.js';
import { AdamOptimizer, buildParamGroups } from '../src/optim/index.js';
import { Trainer } from '../src/trainer/index.js';
import { FakeClip, FakePairs, fakeTask } from './helpers/fake-clip.js';
import { tinyConfig } from './helpers/tiny-config.js';

describe('freeze settings', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it("'towers' trains only heads + scale; {vision: 1, text: 'all'} trains ViT's last block and final norm", async () => {
    const base = tinyConfig('unused');
    const model = await buildModel(parseExperimentConfig({ ...base, model: { ...base.model!, vision: { config: { ...(base.model!.vision as { config: object }).config, num_hidden_layers: 2 } } } }));
    const towers = applyFreeze(model, 'towers');
    expect(towers.visionFrozen && towers.textFrozen).toBe(true);
    expect(new Set(towers.trainable.map((n) => n.name.split('.')[0]))).toEqual(new Set(['visual_projection', 'text_projection', 'logit_scale']));

    const partial = applyFreeze(model, { vision: 1, text: 'all' });
    expect(partial.visionFrozen).toBe(false);
    expect(partial.textFrozen).toBe(true);
    const vision = partial.trainable.filter((n) => n.name.startsWith('vision_model.')).map((n) => n.name);
    expect(vision.length).toBeGreaterThan(0);
    expect(vision.every((n) => n.startsWith('vision_model.encoder.layer.1.') || n.startsWith('vision_model.layernorm.'))).toBe(true);
    expect(vision.some((n) => n.startsWith('vision_model.layernorm.'))).toBe(true);

    const none = applyFreeze(model, 'none');
    expect(none.trainable).toHaveLength(model.namedVariables().length);
    model.dispose();
  });
});

describe('Trainer on wasm', () => {
  it('trains the fake model without leaking and ends where the cpu run ends (within 1e-4)', async () => {
    const run = async (backend: 'cpu' | 'wasm') => {
      await initBackend(backend);
      const model = new FakeClip();
      const optimizer = new AdamOptimizer(buildParamGroups(model.namedVariables(), { lr: 1e-2, weightDecay: 0.01 }), { kind: 'adamw' });
      const trainer = new Trainer({ model, task: fakeTask(model), optimizer, clipGradNorm: 1 });
      await trainer.fit({ train: new FakePairs(16, 8), epochs: 1 });
      const before = tf.memory().numTensors;
      const { history } = await trainer.fit({ train: new FakePairs(16, 8), val: new FakePairs(8, 8), epochs: 3 });
      expect(tf.memory().numTensors).toBe(before);
      const w = model.weights();
      optimizer.dispose();
      model.dispose();
      return { history, w };
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    wasm.history.forEach((h, i) => expect(Math.abs(h.loss! - cpu.history[i]!.loss!)).toBeLessThan(1e-4));
    for (const [name, w] of cpu.w) Array.from(wasm.w.get(name)!).forEach((x, i) => expect(Math.abs(x - w[i]!)).toBeLessThan(1e-4));
    await initBackend('cpu');
  });
});
