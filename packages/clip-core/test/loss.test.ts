import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_LOGIT_SCALE,
  ShapeError,
  ValueError,
  assertFinite,
  assertFiniteTensor,
  clipLogits,
  clipLoss,
  initBackend,
  type SafetensorsFile,
} from '../src/index.js';
import { readSafetensors } from '../src/node.js';
import { expectClose } from './helpers/close.js';

// Reference: PyTorch float64 (fixtures/generator/make_fixtures.py clip_loss_case), stored as float32.
const FIXTURE = fileURLToPath(new URL('./fixtures/clip-loss/io.safetensors', import.meta.url));
// Tolerance (float32 math against a float64 reference): expectClose's default, 1e-5 of each tensor's max |want|.

let ref: SafetensorsFile;
const get = (name: string): Float32Array => ref.tensors.get(name)?.data as Float32Array;

beforeAll(async () => {
  ref = await readSafetensors(FIXTURE);
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`clip loss parity with PyTorch on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });

    it('logits, loss and gradients w.r.t. both embeddings and the log scale', () => {
      expect(tf.getBackend()).toBe(backend);
      const img = tf.tensor2d(get('image_embeds'), [8, 16]);
      const txt = tf.tensor2d(get('text_embeds'), [8, 16]);
      const scale = tf.scalar(get('logit_scale')[0] as number);
      const before = tf.memory().numTensors;

      const { logitsPerImage, logitsPerText } = clipLogits(img, txt, scale);
      expectClose(logitsPerImage.dataSync(), get('logits_per_image'), 'logits_per_image');
      expectClose(logitsPerText.dataSync(), get('logits_per_text'), 'logits_per_text');
      tf.dispose([logitsPerImage, logitsPerText]);

      const loss = clipLoss(img, txt, scale);
      expectClose(loss.dataSync(), get('loss'), 'loss');
      loss.dispose();

      const { value, grads } = tf.valueAndGrads((a, b, c) => clipLoss(a as tf.Tensor2D, b as tf.Tensor2D, c))([
        img,
        txt,
        scale,
      ]);
      expectClose(value.dataSync(), get('loss'), 'loss (valueAndGrads)');
      expectClose(grads[0]?.dataSync() ?? [], get('grad_image_embeds'), 'grad_image_embeds');
      expectClose(grads[1]?.dataSync() ?? [], get('grad_text_embeds'), 'grad_text_embeds');
      expectClose(grads[2]?.dataSync() ?? [], get('grad_logit_scale'), 'grad_logit_scale');
      tf.dispose([value, ...grads]);

      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([img, txt, scale]);
    });
  });
}

describe('clip loss behaviour', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('is invariant to embedding scale (normalises inside) and clamps exp(scale) at 100', () => {
    const img = tf.tensor2d(get('image_embeds'), [8, 16]);
    const txt = tf.tensor2d(get('text_embeds'), [8, 16]);
    const img3 = tf.mul(img, 3) as tf.Tensor2D;
    const s = tf.scalar(2);
    const big = tf.scalar(10);
    const a = clipLoss(img, txt, s);
    const b = clipLoss(img3, txt, s);
    expect(a.dataSync()[0]).toBeCloseTo(b.dataSync()[0] as number, 5);
    const { logitsPerImage } = clipLogits(img, txt, big);
    expect(Math.max(...logitsPerImage.dataSync())).toBeLessThanOrEqual(MAX_LOGIT_SCALE + 1e-3);
    tf.dispose([img, txt, img3, s, big, a, b, logitsPerImage]);
  });

  it('a perfect match has lower loss than a shuffled one', () => {
    const e = tf.tensor2d([1, 0, 0, 1, -1, 0], [3, 2]);
    const shuffled = tf.tensor2d([0, 1, 1, 0, -1, 0], [3, 2]);
    const s = tf.scalar(Math.log(1 / 0.07));
    const good = clipLoss(e, e, s).dataSync()[0] as number;
    const bad = clipLoss(e, shuffled, s).dataSync()[0] as number;
    expect(good).toBeLessThan(0.01);
    expect(bad).toBeGreaterThan(1);
    tf.dispose([e, shuffled, s]);
  });

  it('rejects mismatched shapes with ShapeError', () => {
    const a = tf.zeros([4, 8]) as tf.Tensor2D;
    const b = tf.zeros([3, 8]) as tf.Tensor2D;
    const c = tf.zeros([4, 7]) as tf.Tensor2D;
    const s = tf.scalar(1);
    const v = tf.zeros([2]);
    expect(() => clipLoss(a, b, s)).toThrow(ShapeError);
    expect(() => clipLoss(a, c, s)).toThrow(/dims differ \(8 vs 7\)/);
    expect(() => clipLogits(a, a, v)).toThrow(/logitScale must be a scalar/);
    tf.dispose([a, b, c, s, v]);
  });

  it('NaN/Inf in the logits surfaces as a non-finite loss that assertFinite turns into a ValueError', async () => {
    const img = tf.tensor2d([1, 0, NaN, 1], [2, 2]);
    const inf = tf.tensor2d([1, 0, Infinity, 1], [2, 2]);
    const txt = tf.tensor2d([1, 0, 0, 1], [2, 2]);
    const s = tf.scalar(1);
    for (const bad of [img, inf]) {
      const loss = clipLoss(bad, txt, s);
      const v = (await loss.data())[0] as number;
      expect(() => assertFinite(v, 'loss at step 7')).toThrow(ValueError);
      expect(() => assertFinite(v, 'loss at step 7')).toThrow(/loss at step 7 is NaN/);
      loss.dispose();
    }
    const { logitsPerImage, logitsPerText } = clipLogits(img, txt, s);
    await expect(assertFiniteTensor(logitsPerImage, 'eval logits')).rejects.toThrow(/eval logits: element 2/);
    expect(() => assertFinite(1.5, 'loss')).not.toThrow();
    tf.dispose([img, inf, txt, s, logitsPerImage, logitsPerText]);
  });
});
