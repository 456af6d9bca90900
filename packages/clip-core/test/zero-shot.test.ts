import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIPModel,
  ValueError,
  ZeroShotClassifier,
  createImageEncoder,
  createTextEncoder,
  initBackend,
  l2Normalize,
  type TextInput,
} from '../src/index.js';
import { IMAGE_CONFIG, TEXT_CONFIG, registerFakeTowers } from './helpers/fake-towers.js';

/** Whitespace tokenizer onto the fake tower's 20-token vocab (0 = padding), padded to 8. */
let tokenizeCalls = 0;
function tokenize(texts: string[]): TextInput {
  tokenizeCalls++;
  const ids: number[] = [];
  const mask: number[] = [];
  for (const t of texts) {
    const words = t.split(/\s+/).slice(0, 8);
    for (let j = 0; j < 8; j++) {
      const w = words[j];
      ids.push(w === undefined ? 0 : 1 + ([...w].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7) % 19));
      mask.push(w === undefined ? 0 : 1);
    }
  }
  return { inputIds: tf.tensor2d(ids, [texts.length, 8], 'int32'), attentionMask: tf.tensor2d(mask, [texts.length, 8], 'int32') };
}

let model: CLIPModel;
const classes = ['cat', 'dog', 'airplane', 'truck'];
beforeAll(async () => {
  await initBackend('cpu');
  registerFakeTowers();
  model = new CLIPModel({
    imageEncoder: createImageEncoder(IMAGE_CONFIG, { seed: 3 }),
    textEncoder: createTextEncoder(TEXT_CONFIG, { seed: 4 }),
    projectionDim: 8,
  });
});
afterAll(() => model.dispose());

function embedTexts(texts: string[]): tf.Tensor2D {
  const input = tokenize(texts);
  const e = model.encodeTexts(input);
  tf.dispose([input.inputIds, input.attentionMask]);
  return e;
}

describe('ZeroShotClassifier', () => {
  it('ensembles templates: normalise, average, re-normalise; disposes the tokenizer output', () => {
    const templates = ['a photo of a {}.', 'a blurry photo of a {}.', '{} {}'];
    const before = tf.memory().numTensors;
    const zs = ZeroShotClassifier.create(model, tokenize, classes, templates);
    expect(tf.memory().numTensors).toBe(before + 1); // just the class embeddings
    expect(zs.classEmbeddings.shape).toEqual([4, 8]);
    const manual = tf.tidy(() => {
      const perTemplate = templates.map((t) => embedTexts(classes.map((c) => t.replaceAll('{}', c))));
      return l2Normalize(tf.mean(tf.stack(perTemplate), 0));
    });
    const got = zs.classEmbeddings.dataSync();
    manual.dataSync().forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    manual.dispose();
    zs.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('classifies by scaled cosine similarity: top-k indices, labels and softmax probabilities', async () => {
    const zs = ZeroShotClassifier.create(model, tokenize, classes);
    const pixels = tf.randomNormal([5, 3, 4, 4], 0, 1, 'float32', 8) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const preds = await zs.classify(pixels, 3);
    expect(tf.memory().numTensors).toBe(before);
    // Reference: logits of each image against each class prompt, straight from the model.
    const input = tokenize(classes.map((c) => `a photo of a ${c}.`));
    const { logitsPerImage, logitsPerText } = model.logits(pixels, input);
    const logits = logitsPerImage.arraySync();
    tf.dispose([input.inputIds, input.attentionMask, logitsPerImage, logitsPerText]);
    preds.forEach((p, i) => {
      const row = logits[i] as number[];
      const order = row.map((_, c) => c).sort((a, b) => (row[b] as number) - (row[a] as number));
      expect(p.indices).toEqual(order.slice(0, 3));
      expect(p.labels).toEqual(p.indices.map((c) => classes[c]));
      const z = row.reduce((s, v) => s + Math.exp(v), 0);
      p.probabilities.forEach((q, r) => expect(q).toBeCloseTo(Math.exp(row[order[r] as number] as number) / z, 5));
    });
    pixels.dispose();
    zs.dispose();
  });

  it('batches prompts for long class lists', () => {
    const many = Array.from({ length: 300 }, (_, i) => `class${i}`);
    tokenizeCalls = 0;
    const zs = ZeroShotClassifier.create(model, tokenize, many, ['{}', 'a {}']);
    expect(tokenizeCalls).toBe(3); // 600 prompts in chunks of 256
    expect(zs.classEmbeddings.shape).toEqual([300, 8]);
    zs.dispose();
  });

  it('bad input → ValueError saying what is wrong', async () => {
    expect(() => ZeroShotClassifier.create(model, tokenize, [])).toThrow(ValueError);
    expect(() => ZeroShotClassifier.create(model, tokenize, [])).toThrow(/class list is empty/);
    expect(() => ZeroShotClassifier.create(model, tokenize, ['cat'], ['a photo of a cat'])).toThrow(
      /template 0 "a photo of a cat" has no '\{\}'/,
    );
    expect(() => ZeroShotClassifier.create(model, tokenize, ['cat'], [])).toThrow(/template list is empty/);
    expect(() => ZeroShotClassifier.create(model, tokenize, ['cat', ' '])).toThrow(/class 1 has an empty name/);
    const zs = ZeroShotClassifier.create(model, tokenize, classes);
    const px = tf.zeros([1, 3, 4, 4]) as tf.Tensor4D;
    await expect(zs.classify(px, 5)).rejects.toThrow(/k must be an integer in \[1, 4\]/);
    px.dispose();
    zs.dispose();
  });
});
