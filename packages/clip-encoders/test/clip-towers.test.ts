import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, createImageEncoder, createTextEncoder, initBackend, registeredEncoders, ShapeError, ValueError } from '@clip-ts/core';
import { CLIPTextModel, CLIPVisionModel, parseCLIPTextConfig, parseCLIPVisionConfig } from '@clip-ts/encoders';
import { activation } from '../src/layers.js';
import { maxAbsDiff } from './helpers.js';

const VISION = { model_type: 'clip_vision_model', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 48, image_size: 8, patch_size: 4 };
const TEXT = { model_type: 'clip_text_model', vocab_size: 60, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 24, max_position_embeddings: 8, eos_token_id: 59 };

function stats(values: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < values.length; i++) {
    s += values[i] as number;
    s2 += (values[i] as number) ** 2;
  }
  const mean = s / values.length;
  return { mean, std: Math.sqrt(s2 / values.length - mean * mean) };
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe('CLIP tower configs', () => {
  it('registered as clip_vision_model / clip_text_model', () => {
    expect(registeredEncoders().image).toContain('clip_vision_model');
    expect(registeredEncoders().text).toContain('clip_text_model');
    const v = createImageEncoder(VISION, { seed: 1 });
    const t = createTextEncoder(TEXT, { seed: 1 });
    expect(v).toBeInstanceOf(CLIPVisionModel);
    expect(t).toBeInstanceOf(CLIPTextModel);
    v.dispose();
    t.dispose();
  });

  it("defaults are HF's (ViT-B/32 vision, 512-wide text, quick_gelu, eps 1e-5, EOS 49407)", () => {
    const v = parseCLIPVisionConfig({ model_type: 'clip_vision_model' });
    expect([v.hidden_size, v.intermediate_size, v.num_hidden_layers, v.num_attention_heads, v.image_size, v.patch_size]).toEqual([768, 3072, 12, 12, 224, 32]);
    const t = parseCLIPTextConfig({ model_type: 'clip_text_model' });
    expect([t.vocab_size, t.hidden_size, t.intermediate_size, t.num_attention_heads, t.max_position_embeddings, t.eos_token_id]).toEqual([49408, 512, 2048, 8, 77, 49407]);
    for (const c of [v, t]) expect([c.hidden_act, c.layer_norm_eps, c.attention_dropout, c.initializer_factor]).toEqual(['quick_gelu', 1e-5, 0, 1]);
  });

  it('invalid configs are ConfigErrors naming the key; unknown HF keys are kept', () => {
    expect(() => new CLIPVisionModel({ ...VISION, patch_size: 3 })).toThrow(/image_size: image_size 8 is not divisible by patch_size 3/);
    expect(() => new CLIPTextModel({ ...TEXT, num_attention_heads: 3 })).toThrow(/hidden_size: hidden_size 16 is not a multiple/);
    expect(() => new CLIPTextModel({ ...TEXT, hidden_act: 'swish' })).toThrow(ConfigError);
    expect(() => new CLIPTextModel({ ...TEXT, eos_token_id: 60 })).toThrow(/eos_token_id: eos_token_id 60 ≥ vocab_size 60/);
    const t = new CLIPTextModel({ ...TEXT, projection_dim: 7 });
    expect(t.getConfig().projection_dim).toBe(7);
    t.dispose();
  });

  it('quick_gelu is x·σ(1.702x)', () => {
    const xs = [-3, -0.5, 0, 0.7, 2.5];
    const y = tf.tidy(() => activation('quick_gelu', tf.tensor1d(xs)));
    const want = xs.map((x) => x / (1 + Math.exp(-1.702 * x)));
    expect(maxAbsDiff(y, tf.tensor1d(want))).toBeLessThan(1e-6);
    y.dispose();
  });
});

describe('CLIP text pooling', () => {
  /** The pooled feature must be lastHiddenState at `expected` per row. */
  function expectPooledAt(config: Record<string, unknown>, ids: number[][], expected: number[]): void {
    const tower = new CLIPTextModel({ ...TEXT, ...config }, { seed: 4 });
    const inputIds = tf.tensor2d(ids, undefined, 'int32');
    const attentionMask = tf.onesLike(inputIds);
    const before = tf.memory().numTensors;
    const idx = tower.eosIndices(inputIds);
    expect(Array.from(idx.dataSync())).toEqual(expected);
    const out = tower.forward({ inputIds, attentionMask });
    const rows = tf.tidy(() => tf.stack(expected.map((p, b) => tf.squeeze(tf.slice(out.lastHiddenState, [b, p, 0], [1, 1, -1]), [0, 1]))));
    expect(maxAbsDiff(out.poolerOutput, rows)).toBe(0);
    const enc = tower.encode({ inputIds, attentionMask });
    expect(maxAbsDiff(enc, out.poolerOutput)).toBe(0);
    tf.dispose([idx, out.lastHiddenState, out.poolerOutput, rows, enc]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([inputIds, attentionMask]);
    tower.dispose();
  }

  it('eos_token_id 2 (legacy configs): argmax of the ids, not the first 2', () => {
    expectPooledAt({ eos_token_id: 2 }, [[1, 2, 50, 2], [1, 5, 7, 2]], [2, 2]);
  });

  it('any other eos_token_id: the first position holding it, not the argmax; none → 0', () => {
    expectPooledAt({ eos_token_id: 7 }, [[1, 50, 7, 7], [1, 7, 59, 3], [1, 5, 6, 3]], [2, 1, 0]);
  });
});

describe('CLIP towers', () => {
  it("init is HF's CLIPPreTrainedModel one, seeded", () => {
    const v = new CLIPVisionModel(VISION, { seed: 5 });
    const sd = v.stateDict();
    const D = 64;
    const L = 2;
    const expectStd = (key: string, std: number): void => {
      const s = stats(sd.get(key)!.dataSync());
      expect(Math.abs(s.std / std - 1), key).toBeLessThan(0.15);
      expect(Math.abs(s.mean), key).toBeLessThan(std * 0.2);
    };
    expectStd('encoder.layers.0.self_attn.q_proj.weight', D ** -0.5 * (2 * L) ** -0.5);
    expectStd('encoder.layers.0.self_attn.out_proj.weight', D ** -0.5);
    expectStd('encoder.layers.1.mlp.fc1.weight', (2 * D) ** -0.5);
    expectStd('encoder.layers.1.mlp.fc2.weight', D ** -0.5 * (2 * L) ** -0.5);
    expectStd('embeddings.position_embedding.weight', 0.02);
    expect(Array.from(sd.get('encoder.layers.0.self_attn.q_proj.bias')!.dataSync()).every((x) => x === 0)).toBe(true);
    expect(Array.from(sd.get('pre_layrnorm.weight')!.dataSync()).every((x) => x === 1)).toBe(true);
    expect(sd.has('embeddings.patch_embedding.bias')).toBe(false); // the patch conv has no bias
    expect(sd.get('embeddings.patch_embedding.weight')!.shape).toEqual([64, 3, 4, 4]);
    const same = new CLIPVisionModel(VISION, { seed: 5 });
    const other = new CLIPVisionModel(VISION, { seed: 6 });
    const w = sd.get('encoder.layers.0.self_attn.q_proj.weight')!;
    const s2 = same.stateDict();
    const o2 = other.stateDict();
    expect(maxAbsDiff(w, s2.get('encoder.layers.0.self_attn.q_proj.weight')!)).toBe(0);
    expect(maxAbsDiff(w, o2.get('encoder.layers.0.self_attn.q_proj.weight')!)).toBeGreaterThan(0);
    tf.dispose([...sd.values(), ...s2.values(), ...o2.values()]);
    for (const m of [v, same, other]) m.dispose();
  });

  it('freeze / freezeAllButLast train only the last blocks and the final norm', () => {
    const t = new CLIPTextModel(TEXT, { seed: 7 });
    t.freeze();
    expect(t.frozen).toBe(true);
    expect(t.trainableVariables()).toHaveLength(0);
    t.freezeAllButLast(1);
    const trainable = new Set(t.trainableVariables());
    const names = t.namedVariables().filter((n) => trainable.has(n.variable)).map((n) => n.name);
    expect(names.every((n) => n.startsWith('encoder.layers.1.') || n.startsWith('final_layer_norm.'))).toBe(true);
    expect(names).toHaveLength(16 + 2);
    t.unfreeze();
    expect(t.trainableVariables()).toHaveLength(t.namedVariables().length);
    t.dispose();
  });

  it('bad inputs are ShapeError / ValueError', () => {
    const v = new CLIPVisionModel(VISION);
    const t = new CLIPTextModel(TEXT);
    const px = tf.zeros([1, 3, 8, 12]) as tf.Tensor4D;
    expect(() => v.encode(px)).toThrow(ShapeError);
    const ids = tf.tensor2d([[1, 60]], undefined, 'int32');
    const mask = tf.onesLike(ids);
    expect(() => t.encode({ inputIds: ids, attentionMask: mask })).toThrow(/token id 60 in input_ids is outside the vocabulary/);
    expect(() => t.encode({ inputIds: ids, attentionMask: mask })).toThrow(ValueError);
    const long = tf.zeros([1, 9], 'int32') as tf.Tensor2D;
    expect(() => t.encode({ inputIds: long, attentionMask: long })).toThrow(/sequence length 9 exceeds max_position_embeddings 8/);
    tf.dispose([px, ids, mask, long]);
    v.dispose();
    t.dispose();
  });
});
