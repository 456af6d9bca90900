import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataError } from '@clip-ts/core';
import type { ImageProcessor } from '@clip-ts/core';
import { loadCifar10, loadCifar100 } from '@clip-ts/data';
import { CIFAR10_NAMES, TestProcessor, cifarRecords, tempDir, writeCifar10, writeCifar100 } from './helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

/** Records what processRaw receives, so the plane → interleaved conversion can be checked exactly. */
class RawSpy implements ImageProcessor {
  readonly height = 32;
  readonly width = 32;
  last: { pixels: Uint8Array; width: number; height: number; channels: number } | undefined;
  processFile(): Promise<Float32Array> {
    throw new Error('not used');
  }
  processBuffer(): Promise<Float32Array> {
    throw new Error('not used');
  }
  async processRaw(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<Float32Array> {
    this.last = { pixels: pixels.slice(), width, height, channels };
    return new Float32Array(3 * 32 * 32);
  }
  fingerprint(): string {
    return 'spy';
  }
}

describe('CIFAR-10 binary', () => {
  it('reads the batches, labels and class names (root or cifar-10-batches-bin/)', () => {
    const batches = writeCifar10(dir, 4, 5);
    for (const root of [dir, batches]) {
      const c = loadCifar10(root);
      expect(c.train.length).toBe(20);
      expect(c.test.length).toBe(5);
      expect(c.train.classNames).toEqual(CIFAR10_NAMES);
      expect(c.test.label(3)).toBe(3);
      // Batch 2 record 1 is the 6th training image: label (2 + 1) % 10.
      expect(c.train.label(5)).toBe(3);
      expect(c.train.imageKey(5)).toBe('data_batch_2.bin#1');
      expect(c.train.fingerprint()).toMatch(/^[0-9a-f]{16}$/);
      expect(c.train.fingerprint()).not.toBe(c.test.fingerprint());
    }
  });

  it('interleaves the R, G, B planes into RGB pixels and upsamples through the processor', async () => {
    const batches = writeCifar10(dir);
    // One record whose R plane holds the pixel index (mod 256), G = 100, B = 200.
    const rec = Buffer.alloc(3073);
    rec[0] = 7;
    for (let p = 0; p < 1024; p++) {
      rec[1 + p] = p % 256;
      rec[1 + 1024 + p] = 100;
      rec[1 + 2048 + p] = 200;
    }
    writeFileSync(path.join(batches, 'test_batch.bin'), rec);
    const c = loadCifar10(dir);
    const spy = new RawSpy();
    await c.test.loadImage(0, spy);
    expect(spy.last?.width).toBe(32);
    expect(spy.last?.channels).toBe(3);
    const px = spy.last?.pixels as Uint8Array;
    // Pixel (row 1, col 2) = index 34.
    expect([px[34 * 3], px[34 * 3 + 1], px[34 * 3 + 2]]).toEqual([34, 100, 200]);
    const up = await c.test.loadImage(0, new TestProcessor(64, 64, [0, 0, 0], [1, 1, 1]));
    expect(up.length).toBe(3 * 64 * 64);
    expect(up[64 * 64 + 100]).toBeCloseTo(100 / 255, 5); // G plane, solid
  });

  it('a file that is not a whole number of records is an error naming it', () => {
    const batches = writeCifar10(dir);
    appendFileSync(path.join(batches, 'data_batch_3.bin'), Buffer.alloc(100));
    expect(() => loadCifar10(dir)).toThrow(DataError);
    expect(() => loadCifar10(dir)).toThrow(/data_batch_3\.bin: 12392 bytes is not a whole number of 3073-byte records/);
  });

  it('a label out of range is an error naming the file and record', () => {
    const batches = writeCifar10(dir);
    const f = path.join(batches, 'test_batch.bin');
    const buf = readFileSync(f);
    buf[2 * 3073] = 10;
    writeFileSync(f, buf);
    expect(() => loadCifar10(dir)).toThrow(/test_batch\.bin: record 2: class label 10 out of range \[0, 10\)/);
  });

  it('missing files, wrong class-name counts and empty splits are errors', () => {
    const batches = writeCifar10(dir);
    writeFileSync(path.join(batches, 'batches.meta.txt'), 'cat\ndog\n');
    expect(() => loadCifar10(dir)).toThrow(/batches\.meta\.txt: expected 10 class names, found 2/);
    writeCifar10(dir);
    writeFileSync(path.join(batches, 'test_batch.bin'), Buffer.alloc(0));
    expect(() => loadCifar10(dir)).toThrow(/cifar10 test split is empty/);
    expect(() => loadCifar10(path.join(dir, 'nowhere'))).toThrow(DataError);
  });
});

describe('CIFAR-100 binary', () => {
  it('fine and coarse labels with prompt-ready class names', async () => {
    writeCifar100(dir);
    const fine = loadCifar100(dir);
    const coarse = loadCifar100(dir, { labels: 'coarse' });
    expect(fine.train.length).toBe(6);
    expect(fine.test.length).toBe(3);
    expect(fine.train.classNames).toHaveLength(100);
    expect(fine.train.classNames[1]).toBe('aquarium fish');
    expect(fine.train.rawClassNames[1]).toBe('aquarium_fish');
    expect(coarse.train.classNames).toHaveLength(20);
    expect(fine.train.label(3)).toBe(21);
    expect(coarse.train.label(3)).toBe(3);
    expect(fine.test.label(0)).toBe(99);
    expect(coarse.test.label(0)).toBe(19);
    const img = await fine.test.loadImage(0, new TestProcessor(16, 16, [0, 0, 0], [1, 1, 1]));
    expect(img[2 * 256]).toBeCloseTo(1, 5); // blue plane
    expect(fine.train.fingerprint()).not.toBe(coarse.train.fingerprint());
  });

  it('bad sizes and out-of-range coarse or fine labels are errors', () => {
    const d = writeCifar100(dir);
    writeFileSync(path.join(d, 'train.bin'), cifarRecords([[3, 100]], () => [0, 0, 0]));
    expect(() => loadCifar100(dir)).toThrow(/train\.bin: record 0: fine label 100 out of range \[0, 100\)/);
    writeFileSync(path.join(d, 'train.bin'), cifarRecords([[20, 5]], () => [0, 0, 0]));
    expect(() => loadCifar100(dir)).toThrow(/train\.bin: record 0: coarse label 20 out of range \[0, 20\)/);
    writeFileSync(path.join(d, 'train.bin'), Buffer.alloc(3073));
    expect(() => loadCifar100(dir)).toThrow(/train\.bin: 3073 bytes is not a whole number of 3074-byte records/);
  });
});
