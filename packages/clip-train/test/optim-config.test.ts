import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, initBackend } from '@clip-ts/core';
import { parseExperimentConfig } from '../src/config/index.js';
import { buildOptimizer } from '../src/experiment/optimizer.js';
import { AdamOptimizer, SGDOptimizer } from '../src/optim/index.js';

const minimal = {
  model: { vision: { config: { model_type: 'vit' } }, text: { config: { model_type: 'distilbert' } } },
  data: { dataset: { kind: 'shapes' }, tokenizer: 'tok.json' },
};

describe('optim.name selects the optimizer', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it("'sgd' builds an SGDOptimizer with the config's momentum, dampening and Nesterov", () => {
    const c = parseExperimentConfig({ ...minimal, optim: { name: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true } });
    const w = tf.variable(tf.tensor1d([1, 2]), true, 'head_w');
    const heads = [{ name: 'visual_projection.weight', variable: w, noDecay: false }];
    const sgd = buildOptimizer(c.optim, heads);
    expect(sgd).toBeInstanceOf(SGDOptimizer);
    expect(sgd).toMatchObject({ kind: 'sgd', momentum: 0.9, dampening: 0, nesterov: true });
    // One step from a zero buffer: Nesterov update = g + momentum·g, p -= lr·update.
    sgd.applyGradients(new Map([[w, tf.tensor1d([1, -1])]]));
    const got = Array.from(w.dataSync());
    expect(got[0]).toBeCloseTo(1 - 0.1 * 1.9, 6);
    expect(got[1]).toBeCloseTo(2 + 0.1 * 1.9, 6);
    sgd.dispose();
    const adam = buildOptimizer(parseExperimentConfig(minimal).optim, heads);
    expect(adam).toBeInstanceOf(AdamOptimizer);
    adam.dispose();
    w.dispose();
  });

  it('SGD-only keys are refused for Adam, and an Adam config resolves without them (config.json unchanged)', () => {
    expect(() => parseExperimentConfig({ ...minimal, optim: { name: 'adam', momentum: 0.9 } })).toThrow(ConfigError);
    expect(() => parseExperimentConfig({ ...minimal, optim: { name: 'adam', momentum: 0.9 } })).toThrow(/apply only to optim\.name: sgd/);
    expect(Object.keys(parseExperimentConfig(minimal).optim)).not.toContain('momentum');
  });
});
