import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, clipLoss, distillClipLoss, initBackend, softCrossEntropy } from '../src/index.js';
import { expectClose } from './helpers/close.js';
import { safetensorsFixture } from './helpers/fixture.js';

// Reference: open_clip's DistillClipLoss in PyTorch float64 (fixtures/distill-loss/make_distill.py), stored
// as float32. Tolerance: expectClose's default, 1e-5 of each tensor's max |want|.
const FIXTURE = fileURLToPath(new URL('./fixtures/distill-loss/io.safetensors', import.meta.url));

const get = safetensorsFixture(FIXTURE);

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`DistillClipLoss parity with PyTorch on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });

    for (const name of ['init', 'trained'] as const) {
      it(`${name} scales: both terms, and gradients of contrastive + distill and of distill alone`, () => {
        expect(tf.getBackend()).toBe(backend);
        const img = tf.tensor2d(get('image_embeds'), [8, 16]);
        const txt = tf.tensor2d(get('text_embeds'), [8, 16]);
        const tImg = tf.tensor2d(get('teacher_image_embeds'), [8, 12]);
        const tTxt = tf.tensor2d(get('teacher_text_embeds'), [8, 12]);
        const scale = tf.scalar(get(`${name}/logit_scale`)[0] as number);
        const tScale = tf.scalar(get(`${name}/teacher_logit_scale`)[0] as number);
        const before = tf.memory().numTensors;

        const terms = distillClipLoss(img, txt, scale, tImg, tTxt, tScale);
        expectClose(terms.contrastive.dataSync(), get(`${name}/contrastive`), 'contrastive');
        expectClose(terms.distill.dataSync(), get(`${name}/distill`), 'distill');
        tf.dispose(terms);
        for (const what of ['total', 'distill'] as const) {
          const { value, grads } = tf.valueAndGrads((a, b, c) => {
            const t = distillClipLoss(a as tf.Tensor2D, b as tf.Tensor2D, c, tImg, tTxt, tScale);
            return what === 'total' ? tf.add(t.contrastive, t.distill) : t.distill;
          })([img, txt, scale]);
          expectClose(grads[0]?.dataSync() ?? [], get(`${name}/${what}/grad_image_embeds`), `${what} grad_image_embeds`);
          expectClose(grads[1]?.dataSync() ?? [], get(`${name}/${what}/grad_text_embeds`), `${what} grad_text_embeds`);
          expectClose(grads[2]?.dataSync() ?? [], get(`${name}/${what}/grad_logit_scale`), `${what} grad_logit_scale`);
          tf.dispose([value, ...grads]);
        }
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([img, txt, tImg, tTxt, scale, tScale]);
      });
    }
  });
}

describe('DistillClipLoss behaviour', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('the contrastive term is clipLoss; a teacher equal to the student makes distill its own entropy, the minimum over students', () => {
    const img = tf.tensor2d(get('image_embeds'), [8, 16]);
    const txt = tf.tensor2d(get('text_embeds'), [8, 16]);
    const other = tf.tensor2d(get('teacher_image_embeds').slice(0, 8 * 12), [8, 12]);
    const scale = tf.scalar(2);
    const terms = distillClipLoss(img, txt, scale, img, txt, scale);
    expect(terms.contrastive.dataSync()[0]).toBe(clipLoss(img, txt, scale).dataSync()[0]);
    // H(p, q) ≥ H(p, p): any other student distribution costs more than the teacher's own.
    const selfCE = terms.distill.dataSync()[0] as number;
    const shifted = tf.add(txt, tf.mul(0.5, tf.randomNormal([8, 16], 0, 1, 'float32', 3))) as tf.Tensor2D;
    const worse = distillClipLoss(img, shifted, tf.scalar(1), img, txt, scale).distill.dataSync()[0] as number;
    expect(worse).toBeGreaterThan(selfCE);
    // softCrossEntropy of a one-hot teacher is plain cross-entropy.
    const student = tf.tensor2d([[1, 2, 0.5], [0, -1, 3]]);
    const oneHot = tf.tensor2d([[100, 0, 0], [0, 0, 100]]);
    const ce = -(Math.log(Math.exp(1) / (Math.exp(1) + Math.exp(2) + Math.exp(0.5))) + Math.log(Math.exp(3) / (1 + Math.exp(-1) + Math.exp(3)))) / 2;
    expect(softCrossEntropy(oneHot, student).dataSync()[0]).toBeCloseTo(ce, 5);
    expect(() => distillClipLoss(img, txt, scale, tf.slice(other, 0, 4) as tf.Tensor2D, tf.slice(other, 0, 4) as tf.Tensor2D, scale)).toThrow(ShapeError);
    tf.dispose([img, txt, other, scale, shifted, student, oneHot]);
  });
});
