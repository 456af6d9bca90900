import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, ValueError } from '@clip-ts/core';
import { accuracy, predict, trainFewShot, zeroShotHead } from '../src/few-shot.js';
import type { EmbeddingRows } from '../src/few-shot.js';

const norm = (v: number[]): number[] => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const emb = (rows: number[][]): EmbeddingRows => ({ data: Float32Array.from(rows.flatMap(norm)), rows: rows.length, dim: (rows[0] as number[]).length });

// Class 0's prompt points at class 1's images, so zero-shot gets class-1 images wrong; one labelled
// image per class is enough for the head to fix that.
const text = emb([
  [0.3, 1, 0],
  [0, 0.3, 1],
]);
const images = emb([
  [1, 0, 0.1], // class 0, train
  [0, 1, 0], // class 1, train
  [1, 0.1, 0], // class 0, test
  [0.9, 0, 0.2], // class 0, test
  [0.1, 1, 0], // class 1, test
  [0, 1, 0.1], // class 1, test
]);
const truth = [0, 0, 1, 1];
const testRows = [2, 3, 4, 5];

describe('few-shot adapter', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('starts from zero-shot and fixes what one shot per class shows it', async () => {
    const before = accuracy(predict(zeroShotHead(text, 20), images, testRows), truth);
    const head = await trainFewShot(images, [0, 1], [0, 1], text, 20, { steps: 100 });
    const after = accuracy(predict(head, images, testRows), truth);
    expect(before).toBe(0.5);
    expect(after).toBe(1);
    expect(head.lossAfter).toBeLessThan(head.lossBefore);
  });

  it('the untrained head is the zero-shot classifier (argmax of the scaled cosine)', async () => {
    const head = await trainFewShot(images, [0, 1], [0, 1], text, 20, { steps: 0 });
    expect(predict(head, images, testRows)).toEqual(predict(zeroShotHead(text, 20), images, testRows));
  });

  it('leaves no tensors behind', async () => {
    await trainFewShot(images, [0, 1], [0, 1], text, 20, { steps: 5 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await trainFewShot(images, [0, 1], [0, 1], text, 20, { steps: 5 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects empty or mismatched training sets', async () => {
    await expect(trainFewShot(images, [], [], text, 20)).rejects.toThrow(ValueError);
    await expect(trainFewShot(images, [0, 1], [0], text, 20)).rejects.toThrow(/one label per training image/);
    await expect(trainFewShot(images, [0], [2], text, 20)).rejects.toThrow(/class id 2/);
  });
});
