import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@clip-ts/core';
import { ClassificationLoader, disposeBatch, loadImageFolder, subset } from '@clip-ts/data';
import { afterAll, describe, expect, it } from 'vitest';
import { TestProcessor, tempDir, writeImage, writeTruncatedJpeg } from './helpers.js';

/** TestProcessor with a processFiles that concatenates processFile results and counts its calls. */
class BatchProcessor extends TestProcessor {
  batchCalls = 0;
  readonly outs: Array<Float32Array | undefined> = [];
  async processFiles(paths: readonly string[], options: { out?: Float32Array } = {}): Promise<Float32Array> {
    this.batchCalls++;
    this.outs.push(options.out);
    const per = 3 * this.height * this.width;
    const out = options.out ?? new Float32Array(paths.length * per);
    for (const [i, p] of paths.entries()) out.set(await this.processFile(p), i * per);
    return out;
  }
}

const t = tempDir('clip-batch-files-');
afterAll(() => t.cleanup());

async function folder(bad: boolean): Promise<string> {
  const root = path.join(t.dir, bad ? 'bad' : 'good');
  for (let i = 0; i < 7; i++) await writeImage(path.join(root, i % 2 ? 'cat' : 'dog', `${i}.jpg`), [i * 30, 255 - i * 30, 90]);
  if (bad) await writeTruncatedJpeg(path.join(root, 'cat', 'zz-broken.jpg'));
  return root;
}

async function collect(loader: ClassificationLoader): Promise<Array<{ labels: number[]; indices: number[]; pixels: number[] }>> {
  const out = [];
  for await (const b of loader.batches(0)) {
    out.push({ labels: b.labels, indices: b.indices, pixels: Array.from(b.pixelValues.dataSync()) });
    disposeBatch(b);
  }
  return out;
}

describe('loaders decode whole batches with processor.processFiles', () => {
  it('when the processor has it: one call per batch, the same batches as the per-image path, no tensor leak', async () => {
    const ds = loadImageFolder(await folder(false));
    const batched = new BatchProcessor();
    const options = { batchSize: 3, shuffle: true, seed: 5 };
    const tensors = tf.memory().numTensors;
    const got = await collect(new ClassificationLoader(ds, { ...options, imageProcessor: batched }));
    expect(batched.batchCalls).toBe(3);
    expect(got).toEqual(await collect(new ClassificationLoader(ds, { ...options, imageProcessor: new TestProcessor() })));
    expect(tf.memory().numTensors).toBe(tensors);
    // A subset keeps the files, so it batches too.
    const sub = new BatchProcessor();
    await collect(new ClassificationLoader(subset(ds, [0, 2, 4, 6]), { batchSize: 2, imageProcessor: sub }));
    expect(sub.batchCalls).toBe(2);
  });

  it('refills batch buffers once the tensor holds a copy (wasm backend), with the same batches', async () => {
    const ds = loadImageFolder(await folder(false));
    const before = tf.getBackend();
    await initBackend('wasm');
    try {
      const batched = new BatchProcessor();
      const options = { batchSize: 1, shuffle: true, seed: 9 };
      const got = await collect(new ClassificationLoader(ds, { ...options, imageProcessor: batched }));
      expect(got).toEqual(await collect(new ClassificationLoader(ds, { ...options, imageProcessor: new TestProcessor() })));
      // 7 batches, prefetch 2: the first three get fresh buffers, later ones a returned one.
      expect(batched.outs.some((o) => o !== undefined)).toBe(true);
    } finally {
      await tf.setBackend(before);
    }
  });

  it("falls back to per-image decoding when a file fails, so onBadImage 'skip' still skips just that image", async () => {
    const ds = loadImageFolder(await folder(true), { onBadImage: 'skip' });
    const warnings: string[] = [];
    const loader = new ClassificationLoader(ds, { batchSize: 8, imageProcessor: new BatchProcessor(), onWarning: (m) => warnings.push(m) });
    const [batch] = await collect(loader);
    expect(batch!.indices.length).toBe(7);
    expect(loader.skippedImages.length).toBe(1);
    expect(warnings.join('\n')).toContain('zz-broken.jpg');
  });
});
