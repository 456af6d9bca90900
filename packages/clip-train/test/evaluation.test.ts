import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng } from '@clip-ts/core';
import { evaluateCaptionSplit, type RetrievalOptions } from '../src/evaluation/index.js';
import type { BatchSource, TrainTask } from '../src/trainer/types.js';

/** A batch of precomputed embeddings: the split's images `indices`, each paired with one of its captions. */
interface EmbBatch {
  indices: number[];
  img: tf.Tensor2D;
  txt: tf.Tensor2D;
}

const unit = (v: number[]) => v.map((x) => x / Math.hypot(...v));
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] as number), 0);
const cos = (a: number[], b: number[]) => dot(unit(a), unit(b));

/** Loss of a batch: any function of the pair works; this one is easy to write twice (here and in JS). */
const fakeTask: TrainTask<EmbBatch> = {
  trainLoss: () => tf.scalar(0),
  evalOutputs: (b) =>
    tf.tidy(() => ({ loss: tf.mean(tf.sum(tf.mul(b.img, b.txt), 1)) as tf.Scalar, imageEmbeds: tf.clone(b.img), textEmbeds: tf.clone(b.txt) })),
  batchSize: (b) => b.indices.length,
  disposeBatch: (b) => tf.dispose([b.img, b.txt]),
};

/** A split: image embeddings, several caption embeddings per image, one picked per image for the batches. */
function split(rng: Rng) {
  // Continuous values, so the only ties are the exact copies below (float32 and float64 then agree on them).
  const r = () => rng.next() - 0.5;
  const images: number[][] = Array.from({ length: 11 }, () => [r(), r(), r()]);
  images[5] = [...(images[2] as number[])]; // two identical images: tied scores in both directions
  const captionsOf: number[][][] = images.map((_, i) => Array.from({ length: 1 + (i % 3) }, () => [r(), r(), r()]));
  (captionsOf[7] as number[][]).push([...((captionsOf[3] as number[][])[0] as number[])]); // a caption shared by images 3 and 7
  const picked = captionsOf.map((c, i) => (i % 2) % c.length);
  return { images, captionsOf, picked };
}

type Split = ReturnType<typeof split>;

/** The definitions written out over the whole split (float64, no batching tricks). */
function bruteForce(s: Split, plan: number[][], topK: number[], recallK: number[]) {
  let lossSum = 0;
  const i2t = topK.map(() => 0);
  const t2i = topK.map(() => 0);
  for (const batch of plan) {
    const img = batch.map((i) => s.images[i] as number[]);
    const txt = batch.map((i) => (s.captionsOf[i] as number[][])[s.picked[i] as number] as number[]);
    lossSum += batch.reduce((acc, _, r) => acc + dot(img[r] as number[], txt[r] as number[]), 0);
    for (let r = 0; r < batch.length; r++) {
      const pos = cos(img[r] as number[], txt[r] as number[]);
      const rowRank = txt.filter((t) => cos(img[r] as number[], t) > pos).length;
      const colRank = img.filter((m) => cos(m, txt[r] as number[]) > pos).length;
      topK.forEach((k, j) => {
        if (rowRank < k) i2t[j]!++;
        if (colRank < k) t2i[j]!++;
      });
    }
  }
  const pairs = plan.flat().length;
  const caps = s.captionsOf.flatMap((c, i) => c.map((v) => ({ v, img: i })));
  const recall = recallK.map((k) => {
    const imgHits = s.images.filter((m, i) => {
      const best = Math.max(...caps.filter((c) => c.img === i).map((c) => cos(m, c.v)));
      return caps.filter((c) => cos(m, c.v) > best).length < k;
    }).length;
    const txtHits = caps.filter((c) => {
      const own = cos(s.images[c.img] as number[], c.v);
      return s.images.filter((m) => cos(m, c.v) > own).length < k;
    }).length;
    return { k, imageToText: imgHits / s.images.length, textToImage: txtHits / caps.length };
  });
  return { loss: lossSum / pairs, i2t: i2t.map((h) => h / pairs), t2i: t2i.map((h) => h / pairs), recall, captions: caps.length };
}

function source(s: Split, plan: number[][]): BatchSource<EmbBatch> {
  return {
    async *batches() {
      for (const b of plan) {
        yield {
          indices: b,
          img: tf.tensor2d(b.map((i) => s.images[i] as number[])),
          txt: tf.tensor2d(b.map((i) => (s.captionsOf[i] as number[][])[s.picked[i] as number] as number[])),
        };
      }
    },
  };
}

function retrieval(s: Split, ks: number[]): RetrievalOptions<EmbBatch> {
  return {
    ks,
    numImages: s.images.length,
    imageIndices: (b) => b.indices,
    captions: () =>
      Promise.resolve({ embeds: tf.tensor2d(s.captionsOf.flat()), imageIndex: s.captionsOf.flatMap((c, i) => c.map(() => i)) }),
  };
}

describe('evaluateCaptionSplit', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('matches the brute-force definitions: shuffled batches with a partial last one, several captions per image, ties', async () => {
    for (const seed of [1, 2, 3]) {
      const s = split(new Rng(seed));
      // Shuffled order in batches of 4: 4 + 4 + 3, so the last batch is partial.
      const order = new Rng(seed + 10).shuffle(Array.from({ length: s.images.length }, (_, i) => i));
      const plan = [order.slice(0, 4), order.slice(4, 8), order.slice(8)];
      const topK = [1, 2, 4];
      const recallK = [1, 3, 5];
      const before = tf.memory().numTensors;
      const got = await evaluateCaptionSplit(fakeTask, source(s, plan), { topK, retrieval: retrieval(s, recallK) });
      expect(tf.memory().numTensors).toBe(before);
      const want = bruteForce(s, plan, topK, recallK);
      // float32 on the device vs float64 here: the loss to summation tolerance, the counts exactly.
      expect(got.logs.loss).toBeCloseTo(want.loss, 5);
      expect(got.logs.batch_size).toBe(4);
      topK.forEach((k, j) => {
        expect(got.logs[`top${k}`]).toBe(want.i2t[j]);
        expect(got.logs[`text_top${k}`]).toBe(want.t2i[j]);
      });
      expect(got.retrieval).toEqual({ images: s.images.length, captions: want.captions, recall: want.recall });
    }
  });

  it('without retrieval keeps no embeddings and returns only the logs', async () => {
    const s = split(new Rng(4));
    const plan = [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10]];
    const got = await evaluateCaptionSplit(fakeTask, source(s, plan));
    expect(got.retrieval).toBeUndefined();
    expect(Object.keys(got.logs).sort()).toEqual(['batch_size', 'loss', 'text_top1', 'text_top5', 'top1', 'top5']);
  });

  it('refuses a split whose batches miss an image, and leaks nothing when it does', async () => {
    const s = split(new Rng(5));
    const before = tf.memory().numTensors;
    await expect(evaluateCaptionSplit(fakeTask, source(s, [[0, 1, 2], [3, 4]]), { retrieval: retrieval(s, [1]) })).rejects.toThrow(/image 5 of 11 was in no batch/);
    await expect(evaluateCaptionSplit(fakeTask, source(s, []))).rejects.toThrow(/no batches/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
