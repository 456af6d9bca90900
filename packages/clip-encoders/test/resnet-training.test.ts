import { afterAll, describe, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { EncoderConfig } from '@clip-ts/core';
import { ResNetModel } from '@clip-ts/encoders';
import { expectSameGradients, gradientsOn } from './helpers.js';

/**
 * One training step's gradients on wasm must equal cpu's for the ResNet tower: this runs every backward
 * kernel it needs on wasm — Conv2DBackpropFilter (clip-ts' kernel), Conv2DBackpropInput with explicit
 * padding, MaxPoolGrad with padding, and the BatchNorm gradients through the batch statistics.
 */
const BOTTLENECK = { model_type: 'resnet', embedding_size: 8, hidden_sizes: [8, 12], depths: [2, 1], layer_type: 'bottleneck' };
const BASIC = { model_type: 'resnet', embedding_size: 4, hidden_sizes: [4, 8], depths: [1, 1], layer_type: 'basic', downsample_in_first_stage: true, hidden_act: 'gelu' };

function gradsOn(backend: 'cpu' | 'wasm', config: EncoderConfig, training: boolean): Promise<Map<string, Float32Array>> {
  return gradientsOn(backend, () => {
    const model = new ResNetModel(config, { seed: 21 });
    const x = tf.tensor4d(Array.from({ length: 2 * 3 * 19 * 17 }, (_, i) => Math.sin(i * 0.7)), [2, 3, 19, 17]);
    // A weighted sum, so the gradient does not vanish through the batch-statistics normalisation.
    const w = tf.tensor2d(Array.from({ length: 2 * model.hiddenSize }, (_, i) => Math.cos(i)), [2, model.hiddenSize]);
    return {
      vars: model.namedVariables().filter((v) => !v.buffer),
      loss: () => tf.sum(tf.mul(model.encode(x, { training }), w)) as tf.Scalar,
      dispose: () => {
        tf.dispose([x, w]);
        model.dispose();
      },
    };
  });
}

describe('ResNet gradients: wasm equals cpu', () => {
  afterAll(() => {
    tf.disposeVariables();
  });

  for (const [name, config] of [['bottleneck', BOTTLENECK], ['basic + gelu, downsampling stage 0', BASIC]] as const) {
    for (const training of [false, true]) {
      it(`${name}, ${training ? 'training (batch statistics)' : 'eval (running statistics)'}`, async () => {
        const cpu = await gradsOn('cpu', config, training);
        const wasm = await gradsOn('wasm', config, training);
        const probe = new ResNetModel(config);
        const count = probe.trainableVariables().length;
        probe.dispose();
        expectSameGradients(wasm, cpu, count, { nonZero: true });
      });
    }
  }
});
