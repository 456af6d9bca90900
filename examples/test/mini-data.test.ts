import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_CLASSES, FLICKR8K_SPLIT_FILES, writeMiniCifar10, writeMiniFlickr8k } from '../src/mini-data.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-mini-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeMiniFlickr8k', () => {
  it('writes captions.txt with 5 captions per image, split files and decodable JPEGs', async () => {
    const root = join(dir, 'flickr8k');
    const n = await writeMiniFlickr8k(root, { train: 3, dev: 2, test: 2, imageSize: 24 });
    expect(n).toBe(7);
    const lines = (await readFile(join(root, 'captions.txt'), 'utf8')).trim().split('\n');
    expect(lines[0]).toBe('image,caption');
    expect(lines.length - 1).toBe(35);
    const splits = await Promise.all(
      Object.values(FLICKR8K_SPLIT_FILES).map(async (f) => (await readFile(join(root, f), 'utf8')).trim().split('\n')),
    );
    expect(splits.map((s) => s.length)).toEqual([3, 2, 2]);
    const all = splits.flat();
    expect(new Set(all).size).toBe(7);
    const images = await readdir(join(root, 'Images'));
    expect(images.sort()).toEqual([...all].sort());
    for (const name of all) {
      expect(lines.filter((l) => l.startsWith(`${name},`))).toHaveLength(5);
      const meta = await sharp(join(root, 'Images', name)).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['jpeg', 24, 24, 3]);
    }
  });
});

describe('writeMiniCifar10', () => {
  it('writes 3073-byte records with labels in 0..9, channel planes, and batches.meta.txt', async () => {
    const batches = await writeMiniCifar10(join(dir, 'cifar'), { perTrainBatch: 4, test: 10 });
    for (let b = 1; b <= 5; b++) expect((await stat(join(batches, `data_batch_${b}.bin`))).size).toBe(4 * 3073);
    const test = await readFile(join(batches, 'test_batch.bin'));
    expect(test.length).toBe(10 * 3073);
    const labels = Array.from({ length: 10 }, (_, i) => test[i * 3073]);
    expect(labels).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Label 0 is drawn red: centre pixel's R plane byte is high, G/B low.
    const centre = 16 * 32 + 16;
    expect(test[1 + centre]).toBeGreaterThan(180);
    expect(test[1 + 1024 + centre]).toBeLessThan(80);
    expect(test[1 + 2048 + centre]).toBeLessThan(80);
    const meta = (await readFile(join(batches, 'batches.meta.txt'), 'utf8')).split('\n').filter(Boolean);
    expect(meta).toEqual([...CIFAR10_CLASSES]);
  });
});
