import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, initBackend, type DecodedRgb } from '@clip-ts/core';
import {
  AugmentOptionsSchema,
  Augmenter,
  CaptionLoader,
  adjustBrightness,
  adjustContrast,
  adjustSaturation,
  createShapes,
  disposeBatch,
  hflip,
  loadFlickr8k,
  randomResizedCropBox,
  resizedCrop,
  type AugmentOptions,
  type CropDraws,
} from '@clip-ts/data';
import { FakeTokenizer, TestProcessor, tempDir, writeFlickr } from './helpers.js';

/** Written by test/gen/make_augment_reference.py (torch / torchvision on Debian's python). */
interface Reference {
  image: { height: number; width: number; chw: number[] };
  small: { height: number; width: number; chw: number[]; hflip: number[] };
  cropBoxes: Array<{
    width: number;
    height: number;
    scale: [number, number];
    ratio: [number, number];
    draws: Array<{ kind: 'uniform' | 'int'; lo: number; hi: number; value: number }>;
    box: { top: number; left: number; height: number; width: number };
  }>;
  resizedCrop: Array<{ top: number; left: number; height: number; width: number; outHeight: number; outWidth: number; output: number[] }>;
  jitter: Array<{ op: 'brightness' | 'contrast' | 'saturation'; factor: number; output: number[] }>;
}
const ref = JSON.parse(
  readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/augment/torchvision-reference.json'), 'utf8'),
) as Reference;

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

describe('torchvision parity', () => {
  it('RandomResizedCrop.get_params: the same draws give the same box (fallbacks included)', () => {
    let fallbacks = 0;
    for (const c of ref.cropBoxes) {
      let k = 0;
      const next = (kind: 'uniform' | 'int', lo: number, hi: number) => {
        const d = c.draws[k++];
        expect(d?.kind).toBe(kind);
        // Bounds are float32 in torch (the log-ratio tensor): compare at float32 precision.
        expect(Math.abs(lo - (d?.lo as number))).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(lo)));
        expect(Math.abs(hi - (d?.hi as number))).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(hi)));
        return d?.value as number;
      };
      const draws: CropDraws = { uniform: (lo, hi) => next('uniform', lo, hi), int: (lo, hi) => next('int', lo, hi) };
      expect(randomResizedCropBox(c.width, c.height, c.scale, c.ratio, draws), JSON.stringify(c.box)).toEqual(c.box);
      expect(k).toBe(c.draws.length);
      if (c.draws.length === 20) fallbacks++;
    }
    // The reference covers both the 10-attempt fallback and the normal path.
    expect(fallbacks).toBeGreaterThan(5);
    expect(fallbacks).toBeLessThan(ref.cropBoxes.length);
  });

  it('resized_crop (bilinear, antialias=True) matches torchvision within 1e-5, shrinking and enlarging', () => {
    const img = Float32Array.from(ref.image.chw);
    for (const r of ref.resizedCrop) {
      const out = resizedCrop(img, 3, ref.image.height, ref.image.width, r, r.outHeight, r.outWidth);
      expect(maxAbsDiff(out, r.output), JSON.stringify({ ...r, output: undefined })).toBeLessThan(1e-5);
    }
  });

  it('adjust_brightness / adjust_contrast / adjust_saturation and hflip match torchvision (1e-6)', () => {
    const ops = { brightness: adjustBrightness, contrast: adjustContrast, saturation: adjustSaturation };
    for (const j of ref.jitter) {
      const out = ops[j.op](Float32Array.from(ref.small.chw), j.factor);
      expect(maxAbsDiff(out, j.output), `${j.op} ${j.factor}`).toBeLessThan(1e-6);
    }
    const flipped = hflip(Float32Array.from(ref.small.chw), 3, ref.small.height, ref.small.width);
    expect(Array.from(flipped)).toEqual(Array.from(Float32Array.from(ref.small.hflip)));
  });
});

const rgbImage = (w: number, h: number) => Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + ((i / 3) | 0) * 11) % 256);
const augmenter = (o: AugmentOptions, seed = 3) => new Augmenter(AugmentOptionsSchema.parse(o), seed);
const ALL: AugmentOptions = { randomResizedCrop: { scale: [0.5, 1] }, hflip: 0.5, colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 } };

describe('Augmenter', () => {
  it('is a function of (seed, epoch, index): repeated calls agree, other epochs, indices and seeds differ', () => {
    const img = rgbImage(40, 30);
    const run = (a: Augmenter, epoch: number, index: number) => Array.from(a.forSample(epoch, index).apply(img, 40, 30, 16, 16, 'x'));
    const a = augmenter(ALL);
    const first = run(a, 2, 7);
    expect(run(a, 0, 7)).not.toEqual(first); // computed in between: no hidden state
    expect(run(a, 2, 7)).toEqual(first);
    expect(run(augmenter(ALL), 2, 7)).toEqual(first);
    expect(run(a, 3, 7)).not.toEqual(first);
    expect(run(a, 2, 8)).not.toEqual(first);
    expect(run(augmenter(ALL, 4), 2, 7)).not.toEqual(first);
  });

  it('hflip: 1 mirrors every image; {} augments nothing; bad options are rejected by the schema', () => {
    const w = 6;
    const h = 4;
    const img = rgbImage(w, h);
    const out = augmenter({ hflip: 1 }).forSample(0, 0).apply(img, w, h, w, h, 'x');
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) expect(out[(y * w + x) * 3 + c]).toBe(img[(y * w + (w - 1 - x)) * 3 + c]);
    expect(augmenter({}).active).toBe(false);
    expect(AugmentOptionsSchema.safeParse({ hflip: 1.5 }).success).toBe(false);
    expect(AugmentOptionsSchema.safeParse({ randomResizedCrop: { scale: [0.9, 1.2] } }).success).toBe(false);
    expect(AugmentOptionsSchema.safeParse({ randomResizedCrop: { ratio: [2, 1] } }).success).toBe(false);
    expect(AugmentOptionsSchema.safeParse({ colorJitter: { hue: 0.1 } }).success).toBe(false);
    expect(AugmentOptionsSchema.parse({ randomResizedCrop: {} }).randomResizedCrop).toEqual({ scale: [0.9, 1], ratio: [3 / 4, 4 / 3] });
  });
});

describe('CaptionLoader with augment', () => {
  const shapes = createShapes({ seed: 11, trainSize: 24, valSize: 4, testSize: 4, imageSize: 32 });
  const loaderFor = (o: Partial<ConstructorParameters<typeof CaptionLoader>[1]> = {}) =>
    new CaptionLoader(shapes.train, {
      batchSize: 8,
      tokenizer: new FakeTokenizer(),
      imageProcessor: new TestProcessor(16, 16),
      maxLength: 12,
      shuffle: true,
      seed: 5,
      augment: ALL,
      ...o,
    });
  const pixels = async (loader: CaptionLoader, epoch: number, startBatch = 0) => {
    const out: number[][] = [];
    for await (const b of loader.batches(epoch, { startBatch })) {
      out.push(Array.from(await b.pixelValues.data()));
      disposeBatch(b);
    }
    return out;
  };

  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('gives the same pixels on cpu and wasm, with any decode concurrency and prefetch, and when resumed mid-epoch', async () => {
    const cpu = await pixels(loaderFor(), 1);
    expect(cpu).toHaveLength(3);
    await initBackend('wasm');
    try {
      expect(await pixels(loaderFor({ concurrency: 1, prefetch: 0 }), 1)).toEqual(cpu);
      expect(await pixels(loaderFor({ concurrency: 8, prefetch: 3 }), 1)).toEqual(cpu);
    } finally {
      await initBackend('cpu');
    }
    expect(await pixels(loaderFor(), 1, 2)).toEqual(cpu.slice(2));
    // Augmentation changes the pixels, and differently each epoch.
    expect(await pixels(loaderFor({ augment: undefined }), 1)).not.toEqual(cpu);
    expect(await pixels(loaderFor(), 2)).not.toEqual(cpu);
  });

  it('without augment (val/test loaders) the pixels are the processor output, untouched', async () => {
    const plain = await pixels(loaderFor({ augment: undefined, shuffle: false }), 0);
    const processor = new TestProcessor(16, 16);
    const direct = await Promise.all(Array.from({ length: 8 }, (_, i) => shapes.train.loadImage(i, processor)));
    expect(plain[0]).toEqual(direct.flatMap((d) => Array.from(d)));
    expect(await pixels(loaderFor({ augment: {}, shuffle: false }), 0)).toEqual(plain);
  });

  it('refuses augment with cache, and files with a processor that cannot decode at full size', async () => {
    expect(() => loaderFor({ cache: true })).toThrow(ConfigError);
    const { dir, cleanup } = tempDir();
    try {
      await writeFlickr(dir, { train: 4, val: 1, test: 1 });
      const flickr = loadFlickr8k(dir);
      const fileLoader = (imageProcessor: TestProcessor) =>
        new CaptionLoader(flickr.train, { batchSize: 4, tokenizer: new FakeTokenizer(), imageProcessor, augment: ALL, seed: 1 });
      await expect(pixels(fileLoader(new TestProcessor(16, 16)), 0)).rejects.toThrow(/decodeFile/);
      // A processor that decodes at full size: the random crop is cut from the stored image.
      const decoding = Object.assign(new TestProcessor(16, 16), {
        async decodeFile(file: string): Promise<DecodedRgb> {
          const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
          return { data: new Uint8Array(data), width: info.width, height: info.height };
        },
      });
      const a = await pixels(fileLoader(decoding), 0);
      expect(a[0]).toHaveLength(4 * 3 * 16 * 16);
      expect(await pixels(fileLoader(decoding), 0)).toEqual(a);
    } finally {
      cleanup();
    }
  });
});

describe('hflip and captions that name sides', () => {
  it('warns when a dataset with hflip has "left"/"right" captions (the two-shape scenes do), not otherwise', () => {
    const make = (twoShapes: number, hflip: number) => {
      const warned: string[] = [];
      const set = createShapes({ seed: 2, trainSize: 20, valSize: 2, testSize: 2, imageSize: 16, twoShapes });
      new CaptionLoader(set.train, { batchSize: 4, tokenizer: new FakeTokenizer(), imageProcessor: new TestProcessor(8, 8), augment: { hflip }, onWarning: (m) => warned.push(m) });
      return warned;
    };
    const sided = make(1, 0.5);
    expect(sided).toHaveLength(1);
    expect(sided[0]).toMatch(/20 of 20 images .*on the left/);
    expect(make(1, 0)).toEqual([]);
    expect(make(0, 0.5)).toEqual([]);
  });
});
