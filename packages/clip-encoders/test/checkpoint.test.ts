import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type Encoder } from '@clip-ts/core';
import { DistilBertModel, ViTModel } from '@clip-ts/encoders';
import { BACKENDS } from './helpers.js';

/**
 * Gradient checkpointing recomputes each block in the backward pass: the loss and every gradient must be
 * those of the plain tape (≤ 1e-5 relative), dropout included (the recomputation redraws the same masks),
 * with no tensor left behind and the tower's generator where the plain forward leaves it.
 */
const VIT = {
  model_type: 'vit', hidden_size: 16, num_hidden_layers: 3, num_attention_heads: 2, intermediate_size: 24, image_size: 8, patch_size: 4,
  hidden_dropout_prob: 0.2, attention_probs_dropout_prob: 0.1,
};
const BERT = { model_type: 'distilbert', vocab_size: 60, dim: 16, n_layers: 3, n_heads: 2, hidden_dim: 24, max_position_embeddings: 8, dropout: 0.2, attention_dropout: 0.1 };

interface Result {
  loss: number;
  grads: Map<string, Float32Array>;
  /** A second training forward after the step: equal only if the generators ended in the same state. */
  next: Float32Array;
  /** The same input in eval mode: differs from `next` when dropout is really on. */
  evaluated: Float32Array;
}

/** Two steps' worth of a fresh tower: loss, gradients (by HF name) and a following forward; checks for leaks. */
function step<I>(make: () => Encoder<I>, input: () => I, checkpointing: boolean): Result {
  const model = make();
  (model as unknown as { gradientCheckpointing: boolean }).gradientCheckpointing = checkpointing;
  const x = input();
  const vars = model.namedVariables();
  const before = tf.memory().numTensors;
  // A loss that weighs the rows differently, so every feature's gradient matters.
  const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
    const f = model.encode(x, { training: true });
    return tf.sum(tf.mul(tf.square(f), tf.sin(tf.reshape(tf.range(0, f.size), f.shape)))) as tf.Scalar;
  }), vars.map((v) => v.variable));
  const names = new Map(vars.map((n) => [n.variable.name, n.name]));
  const out = new Map<string, Float32Array>();
  for (const [k, g] of Object.entries(grads)) out.set(names.get(k)!, new Float32Array(g.dataSync()));
  const loss = value.dataSync()[0] as number;
  tf.dispose([value, ...Object.values(grads)]);
  expect(tf.memory().numTensors).toBe(before);
  const nextT = model.encode(x, { training: true });
  const next = new Float32Array(nextT.dataSync());
  nextT.dispose();
  const evalT = model.encode(x);
  const evaluated = new Float32Array(evalT.dataSync());
  evalT.dispose();
  tf.dispose(x as tf.TensorContainer);
  model.dispose();
  return { loss, grads: out, next, evaluated };
}

function expectSame(a: Result, b: Result, count: number): void {
  expect(Math.abs(a.loss - b.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(b.loss));
  expect(a.grads.size).toBe(count);
  expect([...a.grads.keys()].sort()).toEqual([...b.grads.keys()].sort());
  for (const [name, g] of b.grads) {
    const h = a.grads.get(name)!;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < g.length; i++) {
      scale = Math.max(scale, Math.abs(g[i] as number));
      diff = Math.max(diff, Math.abs((g[i] as number) - (h[i] as number)));
    }
    expect(diff, name).toBeLessThanOrEqual(1e-5 * scale + 1e-12);
  }
  expect(a.next).toEqual(b.next);
  // Dropout is on, so the masks (drawn from the generator) matter to the comparison above.
  expect(a.next).not.toEqual(a.evaluated);
}

describe.each(BACKENDS)('gradient checkpointing on %s', (backend) => {
  it('ViT: same loss, gradients and dropout masks as the plain tape', async () => {
    await initBackend(backend);
    const make = () => new ViTModel(VIT, { seed: 3 });
    const input = () => tf.tidy(() => tf.sin(tf.reshape(tf.range(0, 2 * 3 * 64), [2, 3, 8, 8])) as tf.Tensor4D);
    const plain = step(make, input, false);
    const ckpt = step(make, input, true);
    expectSame(ckpt, plain, new ViTModel(VIT).trainableVariables().length);
  });

  it('DistilBERT (padding mask as a constant of the block): same loss and gradients', async () => {
    await initBackend(backend);
    const make = () => new DistilBertModel(BERT, { seed: 4, gradientCheckpointing: true });
    const input = () => ({
      inputIds: tf.tensor2d([[1, 5, 9, 5, 0, 0], [1, 59, 2, 0, 0, 0]], [2, 6], 'int32'),
      attentionMask: tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], [2, 6], 'int32'),
    });
    const plain = step(make, input, false);
    const ckpt = step(make, input, true);
    expectSame(ckpt, plain, 4 + 3 * 16);
  });
});

it('the option is off by default and read from TowerOptions', () => {
  expect(new ViTModel(VIT).gradientCheckpointing).toBe(false);
  expect(new DistilBertModel(BERT, { gradientCheckpointing: true }).gradientCheckpointing).toBe(true);
});

it('keeps less on the tape: the peak memory of a training step drops', async () => {
  await initBackend('cpu');
  const config = { ...VIT, num_hidden_layers: 6, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 };
  const peak = async (checkpointing: boolean): Promise<number> => {
    const model = new ViTModel(config, { seed: 5, gradientCheckpointing: checkpointing });
    const x = tf.tidy(() => tf.sin(tf.reshape(tf.range(0, 8 * 3 * 64), [8, 3, 8, 8])) as tf.Tensor4D);
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(model.encode(x, { training: true })) as tf.Scalar, model.trainableVariables());
      tf.dispose([value, ...Object.values(grads)]);
    });
    x.dispose();
    model.dispose();
    return info.peakBytes;
  };
  const plain = await peak(false);
  const ckpt = await peak(true);
  expect(ckpt).toBeLessThan(0.7 * plain);
});
