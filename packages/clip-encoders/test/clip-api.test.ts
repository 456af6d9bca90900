import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, initBackend, ShapeError, ValueError, type TensorData } from '@clip-ts/core';
import { CLIP, Embeddings } from '@clip-ts/encoders';
import { ClipImageProcessor, loadCLIPTokenizer, loadHFCLIPModel } from '@clip-ts/encoders/node';
import { BACKENDS, fixtureDir, readIO } from './helpers.js';

/**
 * CLIP (the one inference object) on the clip-tiny HF fixture: its embeddings against HF's
 * `*_embeds_normalized` for the fixture's own image files and captions, and zero-shot / similarity /
 * search against the same quantities computed by hand from those embeddings.
 */

const TOL = 1e-4;
const DIR = fixtureDir('clip-tiny');
const IMAGES = ['image_0.png', 'image_1.png', 'image_2.jpg'].map((f) => join(DIR, f));

function rowsOf(t: TensorData, cols: number): number[][] {
  return Array.from({ length: t.data.length / cols }, (_, i) => Array.from(t.data.subarray(i * cols, (i + 1) * cols), Number));
}
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, v, i) => s + v * (b[i] as number), 0);
const normalise = (v: number[]): number[] => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

describe.each(BACKENDS)('CLIP on clip-tiny (%s)', (backend) => {
  let clip: CLIP;
  let captions: string[];
  let io: Map<string, TensorData>;
  beforeAll(async () => {
    await initBackend(backend);
    // decoder 'sharp': Pillow's JPEG pixels, so image embeddings match HF's to TOL (the default
    // libjpeg-turbo decoder's difference is bounded in image-pipeline.test.ts).
    clip = await CLIP.fromPretrained(DIR, { imageProcessor: { decoder: 'sharp' } });
    captions = (JSON.parse(await readFile(join(DIR, 'captions.json'), 'utf8')) as { captions: string[] }).captions;
    io = await readIO('clip-tiny');
  });
  afterAll(() => {
    clip.dispose();
  });
  const get = (k: string): TensorData => io.get(k) as TensorData;

  it('reads the HF repo: kind, caption length, processor from preprocessor_config.json', () => {
    expect(clip.kind).toBe('clip');
    expect(clip.maxLength).toBe(77); // tokenizer_config model_max_length
    expect(clip.imageProcessor).toBeInstanceOf(ClipImageProcessor);
    expect([clip.imageProcessor.height, clip.imageProcessor.width]).toEqual([30, 30]);
    expect(clip.logitScale).toBeCloseTo(100, 3);
  });

  it("embeds the fixture's image files and captions as HF does (*_embeds_normalized)", async () => {
    const dim = clip.model.projectionDim;
    const images = await clip.embedImages(IMAGES, { batchSize: 2 });
    expect([images.rows, images.dim]).toEqual([3, dim]);
    expect(maxDiff(images.data, get('image_embeds_normalized').data)).toBeLessThan(TOL);
    const texts = await clip.embedTexts(captions, { batchSize: 2 });
    expect(maxDiff(texts.data, get('text_embeds_normalized').data)).toBeLessThan(TOL);
    // Every input kind gives the same rows: encoded bytes, decoded pixels, processed pixel tensors.
    const bytes = await readFile(IMAGES[1] as string);
    const rgb = get('image_1_rgb');
    const pixels = { data: Uint8Array.from(rgb.data), width: rgb.shape[1] as number, height: rgb.shape[0] as number };
    const batch = tf.tensor4d(get('pixel_values').data as Float32Array, get('pixel_values').shape as [number, number, number, number]);
    const single = tf.tensor3d((get('pixel_values').data as Float32Array).slice(0, 3 * 30 * 30), [3, 30, 30]);
    try {
      const mixed = await clip.embedImages([bytes, pixels, batch, single]);
      expect(mixed.rows).toBe(6);
      const want = rowsOf(get('image_embeds_normalized'), dim);
      [want[1], want[1], want[0], want[1], want[2], want[0]].forEach((w, i) => expect(maxDiff(mixed.row(i), w as number[])).toBeLessThan(TOL));
      const asTensor = await clip.embedImagesTensor([batch], { batchSize: 2 });
      expect(maxDiff(await asTensor.data(), get('image_embeds_normalized').data)).toBeLessThan(TOL);
      asTensor.dispose();
      const textTensor = await clip.embedTextsTensor(captions, { batchSize: 2 });
      expect(maxDiff(await textTensor.data(), texts.data)).toBeLessThan(1e-6);
      textTensor.dispose();
      expect(batch.isDisposed || single.isDisposed).toBe(false); // borrowed, not disposed
    } finally {
      tf.dispose([batch, single]);
    }
  });

  it('zeroShot = softmax(exp(logit_scale) · cos), labels sorted, prompts from templates', async () => {
    const labels = ['cat', 'dog', 'hat'];
    const templates = ['a photo of a {}.', 'a {} in the snow'];
    const preds = await clip.zeroShot(IMAGES, labels, { templates });
    const img = await clip.embedImages(IMAGES);
    // Ensembling by hand: per label the normalised prompt embeddings, averaged, renormalised.
    const classEmb: number[][] = [];
    for (const l of labels) {
      const p = await clip.embedTexts(templates.map((t) => t.replace('{}', l)));
      classEmb.push(normalise(Array.from({ length: p.dim }, (_, j) => (p.data[j] as number) + (p.data[p.dim + j] as number))));
    }
    const scale = clip.logitScale;
    expect(preds).toHaveLength(3);
    preds.forEach((pred, i) => {
      const probs = softmax(classEmb.map((c) => scale * dot(img.row(i), c)));
      const order = [0, 1, 2].sort((a, b) => (probs[b] as number) - (probs[a] as number));
      expect(pred.indices).toEqual(order);
      expect(pred.labels).toEqual(order.map((o) => labels[o]));
      expect(maxDiff(pred.probabilities, order.map((o) => probs[o] as number))).toBeLessThan(1e-4);
    });
    // A reusable classifier gives the same answer; topK cuts the list.
    const clf = clip.classifier(labels, { templates });
    try {
      const again = await clip.zeroShot(IMAGES, clf, { topK: 2, batchSize: 1 });
      again.forEach((p, i) => {
        expect(p.labels).toEqual(preds[i]?.labels.slice(0, 2));
        expect(maxDiff(p.probabilities, preds[i]?.probabilities.slice(0, 2) ?? [])).toBeLessThan(1e-5);
      });
    } finally {
      clf.dispose();
    }
  });

  it('similarity and search agree with brute force over the embeddings', async () => {
    const img = await clip.embedImages(IMAGES);
    const txt = await clip.embedTexts(captions);
    const sims = await clip.similarity(IMAGES, captions);
    expect(sims).toHaveLength(3);
    sims.forEach((row, i) => expect(maxDiff(row, [0, 1, 2].map((j) => dot(img.row(i), txt.row(j))))).toBeLessThan(1e-5));
    // Scaled similarity = HF's logits_per_image.
    const logits = get('logits_per_image').data;
    expect(maxDiff(sims.flat().map((s) => s * clip.logitScale), logits)).toBeLessThan(1e-3);
    for (const [q, caption] of captions.entries()) {
      const hits = await clip.search(caption, img, 2);
      const brute = [0, 1, 2].map((r) => ({ index: r, score: dot(txt.row(q), img.row(r)) })).sort((a, b) => b.score - a.score);
      expect(hits.map((h) => h.index)).toEqual(brute.slice(0, 2).map((b) => b.index));
      expect(maxDiff(hits.map((h) => h.score), brute.slice(0, 2).map((b) => b.score))).toBeLessThan(1e-5);
    }
  });

  it('leaves no tensor behind over 100 calls', async () => {
    const pixels = tf.tensor4d(get('pixel_values').data as Float32Array, get('pixel_values').shape as [number, number, number, number]);
    const clf = clip.classifier(['cat', 'dog']);
    const progress: number[] = [];
    await clip.zeroShot([pixels], clf); // warm-up: kernels may cache tensors on first use
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      const call = i % 5;
      if (call === 0) await clip.embedImages([pixels], { batchSize: 2, onProgress: (d) => progress.push(d) });
      else if (call === 1) await clip.embedTexts(['a cat', 'a dog', 'a hat'], { batchSize: 2 });
      else if (call === 2) await clip.zeroShot([pixels], clf);
      else if (call === 3) await clip.zeroShot([pixels], ['cat', 'dog'], { templates: ['{}', 'a {}'] });
      else await clip.similarity([pixels], ['a cat']);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(progress.slice(0, 2)).toEqual([2, 3]);
    clf.dispose();
    pixels.dispose();
  });

  it('rejects bad input with typed errors', async () => {
    await expect(clip.embedImages([join(DIR, 'no-such.png')])).rejects.toThrow(DataError);
    await expect(clip.embedImages([join(DIR, 'no-such.png')])).rejects.toThrow(/no-such\.png/);
    await expect(clip.embedImages([join(DIR, 'config.json')])).rejects.toThrow(/cannot decode image .*config\.json/);
    await expect(clip.embedImages([new Uint8Array([1, 2, 3])])).rejects.toThrow(DataError);
    await expect(clip.embedImages([{ data: new Uint8Array(10), width: 2, height: 2 }])).rejects.toThrow(DataError);
    const wrong = tf.zeros([3, 8, 8]) as tf.Tensor3D;
    await expect(clip.embedImages([wrong])).rejects.toThrow(ShapeError);
    wrong.dispose();
    await expect(clip.embedImages([])).rejects.toThrow(ValueError);
    await expect(clip.embedTexts([])).rejects.toThrow(ValueError);
    await expect(clip.zeroShot(IMAGES, [])).rejects.toThrow(ValueError);
    await expect(clip.zeroShot(IMAGES, ['cat'], { templates: ['a photo'] })).rejects.toThrow(/no '\{\}' placeholder/);
    await expect(clip.zeroShot(IMAGES, ['cat', 'dog'], { topK: 3 })).rejects.toThrow(ValueError);
    await expect(clip.search('a cat', new Embeddings(new Float32Array(3), 1, 3))).rejects.toThrow(ShapeError);
    await expect(clip.embedTexts(['a'], { batchSize: 0 })).rejects.toThrow(ValueError);
  });
});

it('a disposed CLIP refuses every call; classifiers of another CLIP are refused', async () => {
  await initBackend('cpu');
  const a = await CLIP.fromPretrained(DIR);
  const b = await CLIP.fromPretrained(DIR);
  const clf = b.classifier(['cat', 'dog']);
  await expect(a.zeroShot(IMAGES, clf)).rejects.toThrow(/not made by this CLIP/);
  clf.dispose();
  b.dispose();
  a.dispose();
  a.dispose(); // idempotent
  await expect(a.embedTexts(['a cat'])).rejects.toThrow(ValueError);
  await expect(a.embedImages(IMAGES)).rejects.toThrow(/used after dispose/);
  expect(() => a.classifier(['cat'])).toThrow(ValueError);
  await expect(a.zeroShot(IMAGES, ['cat'])).rejects.toThrow(ValueError);
  await expect(a.similarity(IMAGES, ['cat'])).rejects.toThrow(ValueError);
});

it('fromParts wraps parts loaded by hand, and owns the model from then on', async () => {
  await initBackend('cpu');
  const fromDir = await CLIP.fromPretrained(DIR);
  const want = await fromDir.embedTexts(['a photo of a cat.']);
  fromDir.dispose();
  const model = await loadHFCLIPModel(DIR);
  const clip = CLIP.fromParts({ model, tokenizer: await loadCLIPTokenizer(DIR), imageProcessor: { height: 30, width: 30, shortestEdge: 30, resample: 'bicubic' } });
  expect(Array.from((await clip.embedTexts(['a photo of a cat.'])).data)).toEqual(Array.from(want.data));
  const before = tf.memory().numTensors;
  clip.dispose();
  expect(tf.memory().numTensors).toBeLessThan(before);
  expect(() => model.logitScale.dataSync()).toThrow(); // freed with the CLIP object
});
