import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, ValueError, initBackend } from '@clip-ts/core';
import type { EncodedText } from '@clip-ts/core';
import { BadImageError, CaptionLoader, ClassificationLoader, createShapes, disposeBatch, loadCifar10, loadFlickr8k } from '@clip-ts/data';
import type { CaptionBatch } from '@clip-ts/data';
import { FakeTokenizer, TestProcessor, tempDir, warnings, writeCifar10, writeFlickr } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const shapes = createShapes({ seed: 11, trainSize: 50, valSize: 5, testSize: 5, imageSize: 32 });

interface Snapshot {
  indices: number[];
  captionIndices: number[];
  pixels: number[];
  ids: number[];
  mask: number[];
}

async function collect(loader: CaptionLoader, epoch: number, startBatch = 0): Promise<Snapshot[]> {
  const out: Snapshot[] = [];
  for await (const b of loader.batches(epoch, { startBatch })) {
    out.push({
      indices: b.indices,
      captionIndices: b.captionIndices,
      pixels: Array.from(await b.pixelValues.data()),
      ids: Array.from(await b.inputIds.data()),
      mask: Array.from(await b.attentionMask.data()),
    });
    disposeBatch(b);
  }
  return out;
}

const loaderFor = (o: Partial<ConstructorParameters<typeof CaptionLoader>[1]> = {}) =>
  new CaptionLoader(shapes.train, {
    batchSize: 16,
    tokenizer: new FakeTokenizer(),
    imageProcessor: new TestProcessor(8, 8),
    maxLength: 12,
    shuffle: true,
    seed: 5,
    ...o,
  });

describe('CaptionLoader', () => {
  it('yields model-ready tensors: float32 [B,3,H,W], int32 [B,maxLength]; the last batch is short unless dropLast', async () => {
    const loader = loaderFor();
    expect(loader.numBatches).toBe(4);
    const sizes: number[] = [];
    for await (const b of loader.batches(0)) {
      expect(b.pixelValues.dtype).toBe('float32');
      expect(b.pixelValues.shape.slice(1)).toEqual([3, 8, 8]);
      expect(b.inputIds.dtype).toBe('int32');
      expect(b.attentionMask.dtype).toBe('int32');
      expect(b.inputIds.shape).toEqual([b.indices.length, 12]);
      expect(b.attentionMask.shape).toEqual([b.indices.length, 12]);
      sizes.push(b.indices.length);
      disposeBatch(b);
    }
    expect(sizes).toEqual([16, 16, 16, 2]);
    const dl = loaderFor({ dropLast: true });
    expect(dl.numBatches).toBe(3);
    expect((await collect(dl, 0)).map((b) => b.indices.length)).toEqual([16, 16, 16]);
    expect(() => loaderFor({ dropLast: true, batchSize: 64 })).toThrow(ValueError);
  });

  it('each epoch visits every image once; rows hold that image and the picked caption', async () => {
    const tok = new FakeTokenizer();
    const proc = new TestProcessor(8, 8);
    const loader = loaderFor({ tokenizer: tok, imageProcessor: proc });
    const seen: number[] = [];
    for await (const b of loader.batches(3)) {
      seen.push(...b.indices);
      const ids = await b.inputIds.array();
      const px = await b.pixelValues.array();
      for (let r = 0; r < b.indices.length; r++) {
        const i = b.indices[r] as number;
        const caption = shapes.train.captions(i)[b.captionIndices[r] as number] as string;
        expect(tok.decodeRow(ids[r] as number[])).toBe(caption.toLowerCase());
        expect(b.captions[r]).toBe(caption);
        expect(b.captionIndices[r]).toBe(loader.captionIndex(i, 3));
        const want = await shapes.train.loadImage(i, proc);
        expect(Float32Array.from((px[r] as number[][][]).flat(2))).toEqual(want);
      }
      disposeBatch(b);
    }
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('same seed → same batches run after run; another epoch or seed → another order and other picks', async () => {
    const a = await collect(loaderFor(), 1);
    const b = await collect(loaderFor(), 1);
    expect(b).toEqual(a);
    const other = await collect(loaderFor(), 2);
    expect(other.map((x) => x.indices)).not.toEqual(a.map((x) => x.indices));
    const picks = (s: Snapshot[]) => {
      const m = new Map<number, number>();
      for (const x of s) x.indices.forEach((i, k) => m.set(i, x.captionIndices[k] as number));
      return Array.from({ length: 50 }, (_, i) => m.get(i));
    };
    expect(picks(other)).not.toEqual(picks(a));
    expect(new Set(picks(a)).size).toBeGreaterThan(2); // picks spread over the five captions
    const seed6 = await collect(loaderFor({ seed: 6 }), 1);
    expect(seed6.map((x) => x.indices)).not.toEqual(a.map((x) => x.indices));
    // Without shuffling the order is the dataset's; 'first' always takes caption 0.
    const plain = await collect(loaderFor({ shuffle: false, captionPick: 'first' }), 4);
    expect(plain.flatMap((x) => x.indices)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(new Set(plain.flatMap((x) => x.captionIndices))).toEqual(new Set([0]));
  });

  it('a run resumed at startBatch sees exactly the batches of an uninterrupted run', async () => {
    const full = await collect(loaderFor(), 7);
    const resumed = await collect(loaderFor(), 7, 2);
    expect(resumed).toEqual(full.slice(2));
    await expect(collect(loaderFor(), 7, 5)).rejects.toThrow(ValueError);
    await expect(collect(loaderFor(), -1)).rejects.toThrow(ValueError);
  });

  it('leaks no tensor: after disposing, and when the consumer stops early', async () => {
    const before = tf.memory().numTensors;
    await collect(loaderFor(), 0);
    expect(tf.memory().numTensors).toBe(before);
    for await (const b of loaderFor({ prefetch: 3 }).batches(0)) {
      disposeBatch(b);
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('prefetches a bounded number of batches and decodes at most `concurrency` images at once', async () => {
    const proc = new TestProcessor(8, 8, undefined, undefined, 5);
    const loader = loaderFor({ imageProcessor: proc, prefetch: 1, concurrency: 3, batchSize: 8 });
    const it = loader.batches(0);
    const first = await it.next();
    // The consumer "computes" holding batch 0: one further batch (prefetch 1) is decoded meanwhile, no more.
    for (let waited = 0; proc.calls < 16 && waited < 20_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    expect(proc.calls).toBe(16);
    expect(proc.maxInFlight).toBeLessThanOrEqual(3);
    expect(proc.maxInFlight).toBeGreaterThan(1);
    disposeBatch(first.value as CaptionBatch);
    for (let r = await it.next(); !r.done; r = await it.next()) disposeBatch(r.value);
    expect(proc.calls).toBe(50);
  });

  it('cache: true decodes each image once across epochs', async () => {
    const proc = new TestProcessor(8, 8);
    const loader = loaderFor({ imageProcessor: proc, cache: true });
    const e0 = await collect(loader, 0);
    expect(proc.calls).toBe(50);
    const e1 = await collect(loader, 1);
    expect(proc.calls).toBe(50);
    const uncached = await collect(loaderFor(), 1);
    expect(e1).toEqual(uncached);
    expect(e0).not.toEqual(e1);
  });

  it('a tokenizer that ignores maxLength is a ShapeError', async () => {
    const bad = new FakeTokenizer();
    const wrong = {
      vocabSize: 10,
      fingerprint: () => 'bad',
      tokenLengths: (t: readonly string[]) => bad.tokenLengths(t),
      encode: (t: readonly string[]): EncodedText => bad.encode(t, 5),
    };
    const it = loaderFor({ tokenizer: wrong }).batches(0);
    await expect(it.next()).rejects.toThrow(ShapeError);
  });

  it('undecodable images: BadImageError, or skipped and counted with onBadImage skip', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const { splits } = await writeFlickr(dir, { train: 10 });
      writeFileSync(path.join(dir, 'images', splits.train[3] as string), 'garbage');
      const f = loadFlickr8k(dir, { onWarning: () => undefined });
      const mk = (o: object = {}) => new CaptionLoader(f.train, { batchSize: 4, tokenizer: new FakeTokenizer(), imageProcessor: new TestProcessor(), ...o });
      const run = async (l: CaptionLoader) => {
        const sizes: number[] = [];
        for await (const b of l.batches(0)) {
          sizes.push(b.indices.length);
          disposeBatch(b);
        }
        return sizes;
      };
      const before = tf.memory().numTensors;
      await expect(run(mk())).rejects.toThrow(BadImageError);
      await expect(run(mk())).rejects.toThrow(splits.train[3] as string);
      const w = warnings();
      const skip = mk({ onBadImage: 'skip', onWarning: w.sink });
      expect(await run(skip)).toEqual([3, 4, 2]);
      expect(skip.skippedImages).toEqual([3]);
      expect(w.list).toHaveLength(1);
      expect(w.list[0]).toMatch(/skipped an undecodable image \(1 so far\).*1003_abc3\.jpg/);
      // Dataset-level policy is the default.
      const g = loadFlickr8k(dir, { onBadImage: 'skip', onWarning: () => undefined });
      const viaDataset = new CaptionLoader(g.train, { batchSize: 4, tokenizer: new FakeTokenizer(), imageProcessor: new TestProcessor(), onWarning: () => undefined });
      expect(await run(viaDataset)).toEqual([3, 4, 2]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      cleanup();
    }
  });
});

describe('ClassificationLoader', () => {
  it('batches CIFAR images with their labels, deterministically', async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeCifar10(dir, 4, 5);
      const c = loadCifar10(dir);
      const before = tf.memory().numTensors;
      const loader = new ClassificationLoader(c.train, { batchSize: 6, imageProcessor: new TestProcessor(16, 16), shuffle: true, seed: 1 });
      expect(loader.numBatches).toBe(4);
      const runs: number[][][] = [];
      for (let rep = 0; rep < 2; rep++) {
        const labels: number[][] = [];
        for await (const b of loader.batches(0)) {
          expect(b.pixelValues.shape).toEqual([b.indices.length, 3, 16, 16]);
          expect(b.labels).toEqual(b.indices.map((i) => c.train.label(i)));
          labels.push(b.indices);
          disposeBatch(b);
        }
        runs.push(labels);
      }
      expect(runs[1]).toEqual(runs[0]);
      expect(tf.memory().numTensors).toBe(before);
      // Shapes' zero-shot set is a classification set too.
      const z = new ClassificationLoader(shapes.zeroShot({ size: 10 }), { batchSize: 10, imageProcessor: new TestProcessor() });
      for await (const b of z.batches()) {
        expect(b.labels.every((l) => shapes.heldOutCombos.some((k) => k.label === l))).toBe(true);
        disposeBatch(b);
      }
    } finally {
      cleanup();
    }
  });
});
