import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  createImageEncoder,
  createTextEncoder,
  initBackend,
  registeredEncoders,
  ShapeError,
  ValueError,
  type TensorData,
} from '@clip-ts/core';
import { DistilBertModel, ViTModel } from '@clip-ts/encoders';
import { activation } from '../src/layers.js';
import { maxAbsDiff } from './helpers.js';

const VIT = {
  model_type: 'vit',
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 24,
  image_size: 8,
  patch_size: 4,
  num_channels: 3,
};
const BERT = { model_type: 'distilbert', vocab_size: 50, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 24, max_position_embeddings: 10 };

function pixels(b = 2): tf.Tensor4D {
  return tf.tidy(() => tf.sin(tf.reshape(tf.range(0, b * 3 * 8 * 8), [b, 3, 8, 8])) as tf.Tensor4D);
}
function text(): { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D } {
  return {
    inputIds: tf.tensor2d([[1, 5, 9, 2, 0, 0], [1, 7, 2, 0, 0, 0]], [2, 6], 'int32'),
    attentionMask: tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], [2, 6], 'int32'),
  };
}
function toData(sd: Map<string, tf.Tensor>): Map<string, TensorData> {
  const out = new Map<string, TensorData>();
  for (const [k, t] of sd) out.set(k, { storedDtype: 'F32', dtype: 'float32', shape: t.shape, data: t.dataSync() as Float32Array });
  return out;
}
function values(sd: Map<string, tf.Tensor>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of sd) out[k] = Array.from(t.dataSync());
  tf.dispose([...sd.values()]);
  return out;
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe('registry and config', () => {
  it('importing @clip-ts/encoders registers vit and distilbert', () => {
    expect(registeredEncoders().image).toContain('vit');
    expect(registeredEncoders().text).toContain('distilbert');
    const v = createImageEncoder(VIT, { seed: 1 });
    const t = createTextEncoder(BERT, { seed: 1 });
    expect(v).toBeInstanceOf(ViTModel);
    expect(t).toBeInstanceOf(DistilBertModel);
    v.dispose();
    t.dispose();
  });

  it('config validation: errors name the key; unknown HF keys are kept', () => {
    expect(() => new ViTModel({ ...VIT, hidden_size: 15 })).toThrow(/hidden_size.*multiple of num_attention_heads/);
    expect(() => new ViTModel({ ...VIT, patch_size: 3 })).toThrow(/image_size: image_size 8x8 is not divisible/);
    expect(() => new ViTModel({ ...VIT, qkv_bias: 'yes' })).toThrow(ConfigError);
    expect(() => new ViTModel({ ...VIT, feature: 'mean' })).toThrow(/feature/);
    expect(() => new DistilBertModel({ ...BERT, n_heads: 3 })).toThrow(/dim: dim 16 is not a multiple of n_heads 3/);
    expect(() => new DistilBertModel({ ...BERT, sinusoidal_pos_embds: true })).toThrow(/sinusoidal_pos_embds/);
    const v = new ViTModel({ ...VIT, id2label: { 0: 'a' } });
    expect(v.getConfig().id2label).toEqual({ 0: 'a' });
    v.dispose();
  });

  it('getConfig rebuilds the same architecture through the registry', () => {
    const a = new ViTModel({ ...VIT, feature: 'pooler' }, { seed: 3 });
    const b = createImageEncoder(a.getConfig(), { seed: 3 });
    expect(values(b.stateDict())).toEqual(values(a.stateDict()));
    a.dispose();
    b.dispose();
  });
});

describe('shapes and activations the fixtures do not show', () => {
  it('non-square image_size [h, w] and patch_size [ph, pw]: sequence = 1 + (h/ph)·(w/pw)', () => {
    const m = new ViTModel({ ...VIT, image_size: [8, 12], patch_size: [4, 2] }, { seed: 2 });
    const px = tf.zeros([1, 3, 8, 12]) as tf.Tensor4D;
    const { lastHiddenState } = m.forward(px);
    expect(lastHiddenState.shape).toEqual([1, 1 + 2 * 6, 16]);
    const sd = m.stateDict();
    expect(sd.get('embeddings.patch_embeddings.projection.weight')!.shape).toEqual([16, 3, 4, 2]);
    tf.dispose([px, lastHiddenState, ...sd.values()]);
    m.dispose();
  });

  it('gelu_new (tanh approximation) matches its formula at a few points', () => {
    const x = tf.tensor1d([-3, -1, 0, 0.5, 1, 2.5]);
    const y = activation('gelu_new', x).dataSync();
    [-3, -1, 0, 0.5, 1, 2.5].forEach((v, i) => {
      const want = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      expect(y[i]).toBeCloseTo(want, 6);
    });
    expect(y[4]).toBeCloseTo(0.8411920, 6);
    x.dispose();
  });
});

describe('from-scratch init (HF _init_weights, seeded)', () => {
  it('same seed → identical weights; another seed → different', () => {
    for (const make of [(s: number) => new ViTModel(VIT, { seed: s }), (s: number) => new DistilBertModel(BERT, { seed: s })]) {
      const a = make(7);
      const b = make(7);
      const c = make(8);
      const va = values(a.stateDict());
      expect(values(b.stateDict())).toEqual(va);
      expect(values(c.stateDict())).not.toEqual(va);
      [a, b, c].forEach((m) => m.dispose());
    }
  });

  it('ViT: trunc-normal(0.02) linear/conv/cls/pos, zero biases, LayerNorm 1/0; HF layouts', () => {
    const m = new ViTModel({ ...VIT, hidden_size: 64, intermediate_size: 128, num_attention_heads: 4 }, { seed: 1 });
    const sd = m.stateDict();
    expect(sd.get('embeddings.patch_embeddings.projection.weight')!.shape).toEqual([64, 3, 4, 4]);
    expect(sd.get('encoder.layer.0.intermediate.dense.weight')!.shape).toEqual([128, 64]);
    const v = values(sd);
    const std = (a: number[]) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
    for (const k of ['embeddings.cls_token', 'embeddings.position_embeddings', 'encoder.layer.1.intermediate.dense.weight']) {
      expect(std(v[k]!)).toBeGreaterThan(0.015);
      expect(std(v[k]!)).toBeLessThan(0.025);
    }
    expect(new Set(v['encoder.layer.0.attention.attention.query.bias'])).toEqual(new Set([0]));
    expect(new Set(v['layernorm.weight'])).toEqual(new Set([1]));
    expect(new Set(v['encoder.layer.1.layernorm_after.bias'])).toEqual(new Set([0]));
    m.dispose();
  });

  it('DistilBERT: normal(0.02) weights, [PAD] row zero, noDecay on norms and biases only', () => {
    const m = new DistilBertModel({ ...BERT, pad_token_id: 3 }, { seed: 1 });
    const v = values(m.stateDict());
    expect(v['embeddings.word_embeddings.weight']!.slice(3 * 16, 4 * 16).every((x) => x === 0)).toBe(true);
    expect(v['embeddings.word_embeddings.weight']!.slice(2 * 16, 3 * 16).some((x) => x !== 0)).toBe(true);
    const noDecay = m.namedVariables().filter((n) => n.noDecay).map((n) => n.name);
    expect(noDecay).toContain('embeddings.LayerNorm.weight');
    expect(noDecay).toContain('transformer.layer.1.ffn.lin2.bias');
    expect(noDecay).toContain('transformer.layer.0.sa_layer_norm.weight');
    expect(noDecay).not.toContain('transformer.layer.0.attention.q_lin.weight');
    expect(noDecay).not.toContain('embeddings.word_embeddings.weight');
    m.dispose();
  });

  it('stateDict → loadStateDict round-trips exactly (PyTorch layout both ways)', () => {
    const a = new ViTModel(VIT, { seed: 1 });
    const b = new ViTModel(VIT, { seed: 2 });
    const sd = a.stateDict();
    b.loadStateDict(toData(sd), 'test');
    tf.dispose([...sd.values()]);
    const px = pixels();
    const ya = a.encode(px);
    const yb = b.encode(px);
    expect(maxAbsDiff(ya, yb)).toBe(0);
    tf.dispose([px, ya, yb]);
    a.dispose();
    b.dispose();
  });
});

describe('features', () => {
  it('DistilBERT feature mean = masked mean of the last hidden state; cls = row 0', () => {
    const cls = new DistilBertModel(BERT, { seed: 4 });
    const mean = new DistilBertModel({ ...BERT, feature: 'mean' }, { seed: 4 });
    const t = text();
    const h = cls.forward(t).lastHiddenState;
    const hv = h.arraySync();
    const fm = mean.encode(t).arraySync();
    const fc = cls.encode(t).arraySync();
    const lens = [4, 3];
    for (let b = 0; b < 2; b++) {
      for (let d = 0; d < 16; d++) {
        let s = 0;
        for (let i = 0; i < lens[b]!; i++) s += hv[b]![i]![d]!;
        expect(fm[b]![d]).toBeCloseTo(s / lens[b]!, 5);
        expect(fc[b]![d]).toBe(hv[b]![0]![d]);
      }
    }
    tf.dispose([h, t.inputIds, t.attentionMask]);
    cls.dispose();
    mean.dispose();
  });

  it("ViT feature 'pooler' = forward's poolerOutput; the pooler only trains when it is the feature", () => {
    const p = new ViTModel({ ...VIT, feature: 'pooler' }, { seed: 5 });
    const px = pixels();
    const out = p.forward(px);
    const f = p.encode(px);
    expect(maxAbsDiff(f, out.poolerOutput!)).toBe(0);
    expect(p.trainableVariables().length).toBe(p.namedVariables().length);
    const c = new ViTModel({ ...VIT, add_pooling_layer: true }, { seed: 5 });
    expect(c.namedVariables().some((n) => n.name === 'pooler.dense.weight')).toBe(true);
    expect(c.trainableVariables().length).toBe(c.namedVariables().length - 2);
    tf.dispose([px, out.lastHiddenState, out.poolerOutput!, f]);
    p.dispose();
    c.dispose();
  });

  it('dropout in training is seeded: same seed → same output, differs from eval', () => {
    const make = () => new DistilBertModel(BERT, { seed: 9 });
    const a = make();
    const b = make();
    const t = text();
    const ta = a.encode(t, { training: true });
    const tb = b.encode(t, { training: true });
    const ev = a.encode(t);
    expect(maxAbsDiff(ta, tb)).toBe(0);
    expect(maxAbsDiff(ta, ev)).toBeGreaterThan(1e-3);
    tf.dispose([ta, tb, ev, t.inputIds, t.attentionMask]);
    a.dispose();
    b.dispose();
  });
});

describe('freezing', () => {
  it('freeze / unfreeze / freezeAllButLast change trainableVariables; gradients reach only unfrozen weights', () => {
    const m = new ViTModel(VIT, { seed: 1 });
    const all = m.namedVariables().length;
    expect(m.trainableVariables().length).toBe(all);
    m.freeze();
    expect(m.frozen).toBe(true);
    expect(m.trainableVariables()).toEqual([]);
    m.unfreeze();
    expect(m.frozen).toBe(false);
    m.freezeAllButLast(1);
    const names = new Map(m.namedVariables().map((n) => [n.variable, n.name]));
    const trainable = m.trainableVariables().map((v) => names.get(v)!);
    expect(trainable.every((n) => n.startsWith('encoder.layer.1.') || n.startsWith('layernorm.'))).toBe(true);
    expect(trainable).toContain('encoder.layer.1.attention.attention.query.weight');
    expect(trainable).toContain('layernorm.weight');
    expect(trainable.length).toBe(16 + 2);

    const px = pixels();
    const { value, grads } = tf.variableGrads(() => tf.sum(m.encode(px)) as tf.Scalar);
    value.dispose();
    const gradNames = Object.keys(grads).map((k) => k.slice(k.indexOf('/') + 1)).sort();
    expect(gradNames).toEqual([...trainable].sort());
    expect(Object.values(grads).every((g) => tf.any(tf.notEqual(g, 0)).dataSync()[0] === 1)).toBe(true);
    tf.dispose(Object.values(grads));

    m.freezeAllButLast(0);
    expect(m.trainableVariables().length).toBe(2);
    tf.dispose(px);
    m.dispose();
  });

  it('DistilBERT freezeAllButLast(1) freezes embeddings and block 0', () => {
    const m = new DistilBertModel(BERT, { seed: 1 });
    m.freezeAllButLast(1);
    const names = new Map(m.namedVariables().map((n) => [n.variable, n.name]));
    const trainable = m.trainableVariables().map((v) => names.get(v)!);
    expect(trainable.length).toBe(16);
    expect(trainable.every((n) => n.startsWith('transformer.layer.1.'))).toBe(true);
    expect(() => m.freezeAllButLast(-1)).toThrow(ValueError);
    m.dispose();
  });
});

describe('bad input → typed errors', () => {
  it('ViT: rank, channels, image size', () => {
    const m = new ViTModel(VIT);
    const bad = [tf.zeros([3, 8, 8]), tf.zeros([1, 1, 8, 8]), tf.zeros([1, 3, 16, 16]), tf.zeros([1, 8, 8, 3])];
    expect(() => m.encode(bad[0] as tf.Tensor4D)).toThrow(ShapeError);
    expect(() => m.encode(bad[1] as tf.Tensor4D)).toThrow(/1 channels.*num_channels 3/);
    expect(() => m.encode(bad[2] as tf.Tensor4D)).toThrow(/image size 16x16.*image_size 8x8/);
    expect(() => m.forward(bad[3] as tf.Tensor4D)).toThrow(/8 channels/);
    tf.dispose(bad);
    m.dispose();
  });

  it('DistilBERT: ids ≥ vocab, negative ids, too long, mismatched mask', () => {
    const m = new DistilBertModel(BERT);
    const ids = tf.tensor2d([[1, 50]], [1, 2], 'int32');
    const neg = tf.tensor2d([[1, -1]], [1, 2], 'int32');
    const ones = tf.ones([1, 2], 'int32') as tf.Tensor2D;
    const long = tf.ones([1, 11], 'int32') as tf.Tensor2D;
    const before = tf.memory().numTensors;
    expect(() => m.encode({ inputIds: ids, attentionMask: ones })).toThrow(ValueError);
    expect(() => m.encode({ inputIds: ids, attentionMask: ones })).toThrow(/token id 50.*\[0, 50\)/);
    expect(() => m.encode({ inputIds: neg, attentionMask: ones })).toThrow(/token id -1/);
    expect(() => m.encode({ inputIds: long, attentionMask: long })).toThrow(/length 11 exceeds max_position_embeddings 10/);
    expect(() => m.forward({ inputIds: long, attentionMask: ones })).toThrow(ShapeError);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ids, neg, ones, long]);
    m.dispose();
  });
});
