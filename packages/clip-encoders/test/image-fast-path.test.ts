import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DataError, Rng, ValueError } from '@clip-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIP_MEAN, CLIP_STD } from '../src/image-processor.js';
import { ClipImageProcessor } from '../src/image-decode.js';

// resizer 'sharp' resizes shrinking images inside libvips; the Pillow transcription (the default resizer,
// bit-identical to Pillow — image-processor.test.ts) is the reference it is measured against.

const tmp = mkdtempSync(join(tmpdir(), 'clip-fast-'));
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Photo-like RGB: lighting gradient, soft blobs, fine texture and noise (flat colour would hide resampling error). */
function photo(width: number, height: number, seed: number): Buffer {
  const rng = new Rng(seed);
  const r = () => rng.next();
  const px = Buffer.alloc(width * height * 3);
  const base = [0, 1, 2].map(() => [r() * 255, (r() - 0.5) * 200, (r() - 0.5) * 200] as const);
  const blobs = Array.from({ length: 6 }, () => ({ x: r() * width, y: r() * height, rad: 10 + r() * 60, col: [r() * 255, r() * 255, r() * 255] }));
  const f = 0.05 + r() * 0.3;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let w = 0;
      const mix = [0, 0, 0];
      for (const b of blobs) {
        const d = Math.hypot(x - b.x, y - b.y) / b.rad;
        const a = d < 1 ? 1 - d * d : 0;
        w += a;
        for (let c = 0; c < 3; c++) mix[c] = (mix[c] as number) + a * (b.col[c] as number);
      }
      const texture = 30 * Math.sin(x * f + 3 * Math.sin(y * f * 0.8));
      for (let c = 0; c < 3; c++) {
        const [b0, bu, bv] = base[c]!;
        const v = (b0 + (bu * x) / width + (bv * y) / height + (mix[c] as number)) / (1 + w) + texture + (r() - 0.5) * 40;
        px[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return px;
}

/** Largest difference in grey levels (0–255) between two CLIP-normalised CHW arrays of size h × w. */
function maxGreyLevelDiff(a: Float32Array, b: Float32Array, h: number, w: number): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const c = Math.floor(i / (h * w));
    worst = Math.max(worst, (Math.abs((a[i] as number) - (b[i] as number)) * (CLIP_STD[c] as number)) * 255);
  }
  return worst;
}

// Shrinks as photo datasets have them (Flickr8k: 500×375 and friends → 224), a mild one and an exact fit.
const SHRINKS: Array<[number, number]> = [[500, 375], [375, 500], [333, 500], [260, 240], [224, 224]];
const files: string[] = [];

beforeAll(async () => {
  for (const [i, [w, h]] of SHRINKS.entries()) {
    const path = join(tmp, `photo${i}.png`); // lossless: only the resampler differs between the paths
    await sharp(photo(w, h, 40 + i), { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
    files.push(path);
  }
});

describe("resizer 'sharp' (libvips) vs Pillow", () => {
  const fast = new ClipImageProcessor({ resizer: 'sharp' });
  const pillow = new ClipImageProcessor();

  it("stays within 5 grey levels of Pillow's bilinear resize when shrinking", async () => {
    expect(pillow.options.resizer).toBe('pillow');
    let worst = 0;
    for (const path of files) {
      const d = maxGreyLevelDiff(await fast.processFile(path), await pillow.processFile(path), 224, 224);
      worst = Math.max(worst, d);
      if (!path.endsWith('photo4.png')) expect(d, path).toBeGreaterThan(0); // really libvips, not the transcription
    }
    // Measured: 5.0 grey levels at worst on these noisy test images; on the bench's 64 photo-like JPEGs
    // (500×375 etc. → 224) at most 3, mean 0.23, 99.97% of values within 1.
    expect(worst).toBeLessThanOrEqual(5.01);
  });

  it('hands enlargements (in either dimension) to the Pillow transcription: identical output', async () => {
    for (const [w, h] of [[100, 80], [300, 120], [120, 300]] as const) {
      const bytes = await sharp(photo(w, h, w + h), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
      expect(Array.from(await fast.processBuffer(bytes, 'up.png')), `${w}x${h}`).toEqual(Array.from(await pillow.processBuffer(bytes, 'up.png')));
    }
  });
});

describe('processFiles (one batch buffer)', () => {
  const p = new ClipImageProcessor({ height: 32, width: 48 });

  it('equals processFile of each image, in order, at any concurrency on this thread', async () => {
    const paths = [...files, files[0]!, files[2]!];
    const one = await Promise.all(paths.map((f) => p.processFile(f)));
    const per = 3 * 32 * 48;
    for (const concurrency of [1, 3, 16]) {
      const batch = await p.processFiles(paths, { workers: 0, concurrency });
      expect(batch.length).toBe(paths.length * per);
      one.forEach((img, i) => expect(Array.from(batch.subarray(i * per, (i + 1) * per)), `image ${i}, concurrency ${concurrency}`).toEqual(Array.from(img)));
    }
    expect((await p.processFiles([])).length).toBe(0);
    await p.close();
  });

  it('rejects with the DataError of the bad file, and a bad concurrency with a ValueError', async () => {
    const bad = join(tmp, 'bad.jpg');
    await writeFile(bad, 'not a jpeg');
    const err = await p.processFiles([files[0]!, bad, files[1]!]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toContain(bad);
    await expect(p.processFiles(files, { concurrency: 0 })).rejects.toThrow(ValueError);
  });
});

describe("the normalisation of the libvips path (resizer 'sharp')", () => {
  it('maps the resized bytes through rescale + CLIP mean/std exactly', async () => {
    const path = files[0]!;
    const { data } = await sharp(path).resize(224, 224, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false }).raw().toBuffer({ resolveWithObject: true });
    const got = await new ClipImageProcessor({ resizer: 'sharp' }).processFile(path);
    const plane = 224 * 224;
    for (const i of [0, 1234, plane - 1]) {
      for (let c = 0; c < 3; c++) {
        expect(got[c * plane + i]).toBeCloseTo(((data[i * 3 + c] as number) / 255 - (CLIP_MEAN[c] as number)) / (CLIP_STD[c] as number), 5);
      }
    }
  });
});
