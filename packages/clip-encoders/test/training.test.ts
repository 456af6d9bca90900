import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { Encoder } from '@clip-ts/core';
import { DistilBertModel, ViTModel } from '@clip-ts/encoders';
import { expectSameGradients, gradientsOn } from './helpers.js';

/**
 * One training step's gradients (loss = sum of the features, tf.variableGrads) on wasm must equal cpu's:
 * this exercises every backward kernel the towers use on wasm, including UnsortedSegmentSum (the
 * gradient of the embedding gather), which stock tfjs-backend-wasm lacks.
 */
const VIT = { model_type: 'vit', hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 24, image_size: 8, patch_size: 4 };
const BERT = { model_type: 'distilbert', vocab_size: 60, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 24, max_position_embeddings: 8 };

/** Gradients of sum(features) of a fresh tower (same seed on both backends → same weights). */
function gradsOn<I>(backend: 'cpu' | 'wasm', make: () => Encoder<I>, input: () => I, training = false): Promise<Map<string, Float32Array>> {
  return gradientsOn(backend, () => {
    const model = make();
    const x = input();
    return {
      vars: model.namedVariables(),
      loss: () => tf.sum(model.encode(x, { training })) as tf.Scalar,
      dispose: () => {
        tf.dispose(x as tf.TensorContainer);
        model.dispose();
      },
    };
  });
}

describe('one training step on wasm matches cpu', () => {
  it('ViT', async () => {
    const make = () => new ViTModel(VIT, { seed: 11 });
    const input = () => tf.tidy(() => tf.sin(tf.reshape(tf.range(0, 2 * 3 * 64), [2, 3, 8, 8])) as tf.Tensor4D);
    const cpu = await gradsOn('cpu', make, input);
    const wasm = await gradsOn('wasm', make, input);
    expectSameGradients(wasm, cpu, new ViTModel(VIT).namedVariables().length);
  });

  it('DistilBERT (embedding gradient through gather on wasm)', async () => {
    const make = () => new DistilBertModel(BERT, { seed: 12 });
    const input = () => ({
      inputIds: tf.tensor2d([[1, 5, 9, 5, 0, 0], [1, 59, 2, 0, 0, 0]], [2, 6], 'int32'),
      attentionMask: tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], [2, 6], 'int32'),
    });
    const cpu = await gradsOn('cpu', make, input);
    const wasm = await gradsOn('wasm', make, input);
    expectSameGradients(wasm, cpu, 4 + 2 * 16);
    // The word-embedding gradient is non-zero exactly on the rows of real tokens: [PAD] (0) only feeds
    // masked keys, so the CLS feature does not depend on it.
    const g = wasm.get('embeddings.word_embeddings.weight')!;
    const rows = new Set<number>();
    for (let r = 0; r < 60; r++) if (g.slice(r * 16, (r + 1) * 16).some((v) => v !== 0)) rows.add(r);
    expect([...rows].sort((a, b) => a - b)).toEqual([1, 2, 5, 9, 59]);

    // Training mode: dropout masks come from the tower's seeded Rng through tfjs' JS random ops, so
    // they (and the gradients) agree across backends too.
    const cpuTrain = await gradsOn('cpu', make, input, true);
    const wasmTrain = await gradsOn('wasm', make, input, true);
    expectSameGradients(wasmTrain, cpuTrain, 4 + 2 * 16);
    const differs = [...cpuTrain].some(([k, v]) => v.some((x, i) => Math.abs(x - cpu.get(k)![i]!) > 1e-6));
    expect(differs).toBe(true);
  });
});
