import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@clip-ts/core';
import { DistilBertModel, ViTModel } from '@clip-ts/encoders';
import { loadEncoderFromDir } from '@clip-ts/encoders/node';
import { BACKENDS, fixtureDir, maxAbsDiff, readIO, toTensor } from './helpers.js';

// Tolerance from shared/fixtures/README.md: float32 against a float64 reference; a wrong transpose,
// dtype or eps is off by 1e-2 or more.
const TOL = 1e-4;

const VIT_FIXTURES = [
  { name: 'vit-tiny', pooler: true }, // plain ViTModel keys, pooler, qkv_bias, eps 1e-12
  { name: 'vit-tiny-classifier-fp16', pooler: false }, // 'vit.' prefix, classifier.*, F16, no pooler
  { name: 'vit-variant', pooler: true }, // sharded + F16 shard, no qkv bias, eps 1e-6, 3 heads, patch 4, 1 channel, relu
];
const TEXT_FIXTURES = [
  'distilbert-tiny', // 'distilbert.' prefix, BF16 word embeddings, position_ids buffer, vocab_* head
  'distilbert-variant', // 'text_model.' prefix, 2 heads, relu, a row with one real token
];

describe.each(BACKENDS)('HF parity on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });
  afterAll(() => {
    tf.disposeVariables();
  });

  it.each(VIT_FIXTURES)('$name: last_hidden_state (and pooler_output) within 1e-4', async ({ name, pooler }) => {
    const io = await readIO(name);
    const loaded = await loadEncoderFromDir(fixtureDir(name));
    expect(loaded.kind).toBe('image');
    const vit = loaded.encoder as ViTModel;
    expect(vit.hasPooler).toBe(pooler);
    const before = tf.memory().numTensors;
    const px = toTensor(io.get('pixel_values')) as tf.Tensor4D;
    const out = vit.forward(px);
    expect(maxAbsDiff(out.lastHiddenState, io.get('last_hidden_state')!)).toBeLessThan(TOL);
    if (pooler) expect(maxAbsDiff(out.poolerOutput!, io.get('pooler_output')!)).toBeLessThan(TOL);
    else expect(out.poolerOutput).toBeUndefined();
    // encode = CLS row of the last hidden state.
    const feats = vit.encode(px);
    const cls = tf.tidy(() => tf.squeeze(tf.slice(out.lastHiddenState, [0, 0, 0], [-1, 1, -1]), [1]));
    expect(maxAbsDiff(feats, cls)).toBe(0);
    tf.dispose([px, out.lastHiddenState, out.poolerOutput, feats, cls].filter((t) => t !== undefined));
    expect(tf.memory().numTensors).toBe(before);
    vit.dispose();
  });

  it.each(TEXT_FIXTURES)('%s: last_hidden_state (padded positions included) within 1e-4', async (name) => {
    const io = await readIO(name);
    const loaded = await loadEncoderFromDir(fixtureDir(name));
    expect(loaded.kind).toBe('text');
    const bert = loaded.encoder as DistilBertModel;
    const before = tf.memory().numTensors;
    const inputIds = toTensor(io.get('input_ids')) as tf.Tensor2D; // int64 on disk → int32
    const attentionMask = toTensor(io.get('attention_mask')) as tf.Tensor2D;
    const { lastHiddenState } = bert.forward({ inputIds, attentionMask });
    expect(maxAbsDiff(lastHiddenState, io.get('last_hidden_state')!)).toBeLessThan(TOL);
    tf.dispose([inputIds, attentionMask, lastHiddenState]);
    expect(tf.memory().numTensors).toBe(before);
    bert.dispose();
  });
});
