import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CLIPModel,
  CheckpointError,
  SIGLIP_LOGIT_BIAS_INIT,
  SIGLIP_LOGIT_SCALE_INIT,
  ShapeError,
  ZeroShotClassifier,
  clipLoss,
  createImageEncoder,
  createTextEncoder,
  initBackend,
  siglipLogits,
  siglipLoss,
  type TextInput,
} from '../src/index.js';
import { expectClose } from './helpers/close.js';
import { safetensorsFixture } from './helpers/fixture.js';
import { IMAGE_CONFIG, TEXT_CONFIG, fakeBatch, registerFakeTowers } from './helpers/fake-towers.js';

// Reference: PyTorch float64 (fixtures/siglip-loss/make_siglip.py), stored as float32.
const FIXTURE = fileURLToPath(new URL('./fixtures/siglip-loss/io.safetensors', import.meta.url));
// Tolerance (float32 math against a float64 reference): expectClose's default, 1e-5 of each tensor's max |want|.

const get = safetensorsFixture(FIXTURE);

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`SigLIP and grouped CLIP loss parity with PyTorch on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });

    for (const name of ['siglip', 'siglip_trained', 'siglip_grouped'] as const) {
      it(`${name}: logits, loss and gradients w.r.t. both embeddings, the log scale and the bias`, () => {
        expect(tf.getBackend()).toBe(backend);
        const img = tf.tensor2d(get('image_embeds'), [8, 16]);
        const txt = tf.tensor2d(get('text_embeds'), [8, 16]);
        const scale = tf.scalar(get(`${name}/logit_scale`)[0] as number);
        const bias = tf.scalar(get(`${name}/logit_bias`)[0] as number);
        const positives = name === 'siglip_grouped' ? tf.tensor2d(get('grouped_positives'), [8, 8]) : undefined;
        const options = positives ? { positives } : {};
        const before = tf.memory().numTensors;

        const logits = siglipLogits(img, txt, scale, bias);
        expectClose(logits.dataSync(), get(`${name}/logits`), 'logits');
        logits.dispose();
        const { value, grads } = tf.valueAndGrads((a, b, c, d) => siglipLoss(a as tf.Tensor2D, b as tf.Tensor2D, c, d, options))([
          img,
          txt,
          scale,
          bias,
        ]);
        expectClose(value.dataSync(), get(`${name}/loss`), 'loss');
        expectClose(grads[0]?.dataSync() ?? [], get(`${name}/grad_image_embeds`), 'grad_image_embeds');
        expectClose(grads[1]?.dataSync() ?? [], get(`${name}/grad_text_embeds`), 'grad_text_embeds');
        expectClose(grads[2]?.dataSync() ?? [], get(`${name}/grad_logit_scale`), 'grad_logit_scale');
        expectClose(grads[3]?.dataSync() ?? [], get(`${name}/grad_logit_bias`), 'grad_logit_bias');
        tf.dispose([value, ...grads]);
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([img, txt, scale, bias, ...(positives ? [positives] : [])]);
      });
    }

    it('grouped CLIP loss (targets spread over each group) and its gradients', () => {
      const img = tf.tensor2d(get('image_embeds'), [8, 16]);
      const txt = tf.tensor2d(get('text_embeds'), [8, 16]);
      const scale = tf.scalar(get('clip_grouped/logit_scale')[0] as number);
      const positives = tf.tensor2d(get('grouped_positives'), [8, 8]);
      const before = tf.memory().numTensors;
      const { value, grads } = tf.valueAndGrads((a, b, c) => clipLoss(a as tf.Tensor2D, b as tf.Tensor2D, c, { positives }))([img, txt, scale]);
      expectClose(value.dataSync(), get('clip_grouped/loss'), 'loss');
      expectClose(grads[0]?.dataSync() ?? [], get('clip_grouped/grad_image_embeds'), 'grad_image_embeds');
      expectClose(grads[1]?.dataSync() ?? [], get('clip_grouped/grad_text_embeds'), 'grad_text_embeds');
      expectClose(grads[2]?.dataSync() ?? [], get('clip_grouped/grad_logit_scale'), 'grad_logit_scale');
      tf.dispose([value, ...grads]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([img, txt, scale, positives]);
    });
  });
}

describe('SigLIP loss behaviour', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('stays finite for huge logits (no overflow in log σ) and rejects bad shapes', () => {
    const e = tf.tensor2d([1, 0, 0, 1], [2, 2]);
    const far = tf.tensor2d([0, 1, 1, 0], [2, 2]);
    const s = tf.scalar(Math.log(100));
    const b = tf.scalar(-500);
    const loss = siglipLoss(e, far, s, b).dataSync()[0] as number;
    // Two positives at logit 0·100 − 500: −log σ(−500) = 500 each, over N = 2.
    expect(loss).toBeCloseTo(500, 3);
    const v = tf.zeros([2]);
    const p3 = tf.eye(3) as tf.Tensor2D;
    expect(() => siglipLoss(e, far, s, v)).toThrow(/logitBias must be a scalar/);
    expect(() => siglipLoss(e, far, s, b, { positives: p3 })).toThrow(ShapeError);
    tf.dispose([e, far, s, b, v, p3]);
  });
});

describe('SigLIP CLIPModel', () => {
  beforeAll(async () => {
    await initBackend('cpu');
    registerFakeTowers();
  });
  const build = (loss: 'clip' | 'siglip') =>
    new CLIPModel({
      imageEncoder: createImageEncoder(IMAGE_CONFIG, { seed: 3 }),
      textEncoder: createTextEncoder(TEXT_CONFIG, { seed: 4 }),
      projectionDim: 8,
      loss,
    });

  it('starts at t′ = ln 10, b = −10, trains and saves logit_bias, and reloads it from the checkpoint', async () => {
    const model = build('siglip');
    expect(model.logitScale.dataSync()[0]).toBeCloseTo(SIGLIP_LOGIT_SCALE_INIT, 6);
    expect(model.logitBias?.dataSync()[0]).toBe(SIGLIP_LOGIT_BIAS_INIT);
    expect(model.trainableVariables()).toContain(model.logitBias);
    expect(model.namedVariables().find((v) => v.name === 'logit_bias')?.noDecay).toBe(true);
    model.logitBias?.assign(tf.scalar(-3.25));
    const bytes = await model.toBytes();
    expect(JSON.parse(bytes.config)).toMatchObject({ loss_type: 'siglip', logit_bias_init_value: -10 });
    const back = CLIPModel.fromBytes(bytes);
    expect(back.lossType).toBe('siglip');
    expect(back.logitBias?.dataSync()[0]).toBe(-3.25);
    // The model's loss is the SigLIP loss of its embeddings.
    const batch = fakeBatch(4);
    const got = back.loss(batch).dataSync()[0] as number;
    const want = tf.tidy(() => {
      const img = back.encodeImages(batch.pixelValues);
      const txt = back.encodeTexts({ inputIds: batch.inputIds, attentionMask: batch.attentionMask });
      return siglipLoss(img, txt, back.logitScale, back.logitBias as tf.Variable).dataSync()[0] as number;
    });
    expect(got).toBeCloseTo(want, 5);
    tf.dispose([batch.pixelValues, batch.inputIds, batch.attentionMask]);
    // A SigLIP config without the bias weight, and a CLIP config with one, are both refused by name.
    const clipBytes = await build('clip').toBytes();
    expect(() => CLIPModel.fromBytes({ config: bytes.config, weights: clipBytes.weights })).toThrow(/missing weights: logit_bias/);
    expect(() => CLIPModel.fromBytes({ config: clipBytes.config, weights: bytes.weights })).toThrow(CheckpointError);
    expect(JSON.parse(clipBytes.config)).not.toHaveProperty('loss_type');
    model.dispose();
    back.dispose();
  });

  it('zero-shot probabilities are per-class sigmoids of scale·cos + bias for SigLIP, a softmax for CLIP', async () => {
    const tokenize = (texts: string[]): TextInput => {
      const ids = texts.flatMap((t, i) => [1 + (t.length % 19), 1 + (i % 19), 0, 0]);
      const mask = texts.flatMap(() => [1, 1, 0, 0]);
      return { inputIds: tf.tensor2d(ids, [texts.length, 4], 'int32'), attentionMask: tf.tensor2d(mask, [texts.length, 4], 'int32') };
    };
    const pixels = fakeBatch(2).pixelValues;
    for (const loss of ['clip', 'siglip'] as const) {
      const model = build(loss);
      model.logitBias?.assign(tf.scalar(1.5));
      const zs = ZeroShotClassifier.create(model, tokenize, ['a', 'bb', 'ccc'], ['{}']);
      expect(zs.probabilities).toBe(loss === 'siglip' ? 'sigmoid' : 'softmax');
      const [pred] = await zs.classify(pixels, 3);
      const cos = tf.tidy(() => (tf.matMul(model.encodeImages(pixels), zs.classEmbeddings, false, true) as tf.Tensor2D).arraySync()[0] as number[]);
      const scale = Math.exp(model.logitScale.dataSync()[0] as number);
      const z = cos.map((c) => scale * c + (loss === 'siglip' ? 1.5 : 0));
      const want = loss === 'siglip' ? z.map((v) => 1 / (1 + Math.exp(-v))) : z.map((v) => Math.exp(v) / z.reduce((s, u) => s + Math.exp(u), 0));
      pred?.indices.forEach((c, r) => expect(pred.probabilities[r]).toBeCloseTo(want[c] as number, 5));
      zs.dispose();
      model.dispose();
    }
    pixels.dispose();
  });
});
