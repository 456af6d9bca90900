import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { CaptionTokenizer, EncodedText, ImageProcessor } from '@clip-ts/core';

/** Whitespace tokenizer: [PAD]=0 [CLS]=1 [SEP]=2, each word a stable id from its hash (independent of order). */
export class FakeTokenizer implements CaptionTokenizer {
  private seen = new Map<number, string>();
  readonly vocabSize = 10_000;
  private words(t: string): string[] {
    return t.toLowerCase().split(/\s+/).filter((w) => w !== '');
  }
  private id(w: string): number {
    let h = 2166136261;
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 16777619) >>> 0;
    const id = 3 + (h % (this.vocabSize - 3));
    this.seen.set(id, w);
    return id;
  }
  encode(texts: readonly string[], maxLength: number): EncodedText {
    const inputIds = new Int32Array(texts.length * maxLength);
    const attentionMask = new Int32Array(texts.length * maxLength);
    texts.forEach((t, b) => {
      const ids = [1, ...this.words(t).slice(0, maxLength - 2).map((w) => this.id(w)), 2];
      ids.forEach((id, k) => {
        inputIds[b * maxLength + k] = id;
        attentionMask[b * maxLength + k] = 1;
      });
    });
    return { inputIds, attentionMask, batchSize: texts.length, seqLength: maxLength };
  }
  tokenLengths(texts: readonly string[]): number[] {
    return texts.map((t) => this.words(t).length + 2);
  }
  /** Inverse of encode for one row (tests read captions back). */
  decodeRow(ids: ArrayLike<number>): string {
    return Array.from(ids)
      .filter((i) => i > 2)
      .map((i) => this.seen.get(i))
      .join(' ');
  }
  fingerprint(): string {
    return 'fake-whitespace';
  }
}

/**
 * Test image processor through sharp: decode, resize (fill) to size×size, scale to [0,1], then
 * (x - mean) / std per channel, CHW. Counts decodes in flight, for the prefetch/concurrency tests.
 */
export class TestProcessor implements ImageProcessor {
  inFlight = 0;
  maxInFlight = 0;
  calls = 0;
  constructor(
    readonly height = 8,
    readonly width = 8,
    private readonly mean = [0.5, 0.5, 0.5],
    private readonly std = [0.5, 0.5, 0.5],
    private readonly delayMs = 0,
  ) {}

  private async run(img: ReturnType<typeof sharp>): Promise<Float32Array> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      const { data } = await img
        .removeAlpha()
        .toColourspace('srgb')
        .resize(this.width, this.height, { fit: 'fill' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      const plane = this.height * this.width;
      const out = new Float32Array(3 * plane);
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) out[c * plane + p] = ((data[p * 3 + c] as number) / 255 - (this.mean[c] as number)) / (this.std[c] as number);
      }
      return out;
    } finally {
      this.inFlight--;
    }
  }
  processFile(file: string): Promise<Float32Array> {
    return this.run(sharp(file));
  }
  processBuffer(bytes: Uint8Array): Promise<Float32Array> {
    return this.run(sharp(bytes));
  }
  processRaw(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<Float32Array> {
    return this.run(sharp(pixels, { raw: { width, height, channels } }));
  }
  fingerprint(): string {
    return `test-${this.height}x${this.width}`;
  }
}

export function tempDir(prefix = 'clip-data-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A solid-colour image with a little pattern, as JPEG or PNG by extension. */
export async function writeImage(file: string, rgb: readonly [number, number, number], size = 16): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const px = Buffer.alloc(size * size * 3);
  for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) px[p * 3 + c] = (rgb[c] as number) ^ (p % 7);
  const img = sharp(px, { raw: { width: size, height: size, channels: 3 } });
  await (file.endsWith('.png') ? img.png() : img.jpeg({ quality: 90 })).toFile(file);
}

/** A JPEG cut off in the middle of its entropy-coded data (a partial download). */
export async function writeTruncatedJpeg(file: string): Promise<void> {
  const size = 64;
  const px = Buffer.alloc(size * size * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 251;
  const jpg = await sharp(px, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, jpg.subarray(0, Math.floor(jpg.length * 0.6)));
}

export interface FlickrLayout {
  /** 'csv' = captions.txt, 'token' = Flickr8k.token.txt */
  format?: 'csv' | 'token';
  imagesDir?: string;
  train?: number;
  val?: number;
  test?: number;
  captionsPerImage?: number;
}

export const COLOURS: ReadonlyArray<readonly [string, readonly [number, number, number]]> = [
  ['red', [220, 30, 30]],
  ['green', [30, 180, 40]],
  ['blue', [30, 60, 220]],
];

/** Write a small Flickr8k directory in a real layout; returns image names per split and the captions. */
export async function writeFlickr(root: string, layout: FlickrLayout = {}): Promise<{ splits: Record<'train' | 'val' | 'test', string[]>; captions: Map<string, string[]> }> {
  const format = layout.format ?? 'csv';
  const imagesDir = layout.imagesDir ?? 'images';
  const per = layout.captionsPerImage ?? 5;
  const counts = { train: layout.train ?? 6, val: layout.val ?? 2, test: layout.test ?? 2 };
  const splits = { train: [] as string[], val: [] as string[], test: [] as string[] };
  const captions = new Map<string, string[]>();
  let n = 0;
  for (const split of ['train', 'val', 'test'] as const) {
    for (let i = 0; i < counts[split]; i++, n++) {
      const name = `${1000 + n}_abc${n}.jpg`;
      const [colour, rgb] = COLOURS[n % COLOURS.length] as (typeof COLOURS)[number];
      await writeImage(path.join(root, imagesDir, name), rgb);
      splits[split].push(name);
      captions.set(
        name,
        Array.from({ length: per }, (_, k) =>
          k === 1 ? `A ${colour} dog, running "fast" number ${n}` : `a ${colour} thing ${n} caption ${k} .`,
        ),
      );
    }
  }
  if (format === 'csv') {
    const q = (s: string) => (/[",]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    const lines = ['image,caption'];
    for (const [name, caps] of captions) for (const c of caps) lines.push(`${name},${q(c)}`);
    writeFileSync(path.join(root, 'captions.txt'), lines.join('\n') + '\n');
  } else {
    const lines: string[] = [];
    for (const [name, caps] of captions) caps.forEach((c, k) => lines.push(`${name}#${k}\t${c}`));
    writeFileSync(path.join(root, 'Flickr8k.token.txt'), lines.join('\n') + '\n');
  }
  const files = { train: 'Flickr_8k.trainImages.txt', val: 'Flickr_8k.devImages.txt', test: 'Flickr_8k.testImages.txt' };
  for (const s of ['train', 'val', 'test'] as const) writeFileSync(path.join(root, files[s]), splits[s].join('\n') + '\n');
  return { splits, captions };
}

/** CIFAR records: label byte(s), then R, G, B planes of a solid colour (pixel (0,0) set to the label for checks). */
export function cifarRecords(labels: ReadonlyArray<readonly number[]>, colour: (i: number) => readonly [number, number, number]): Buffer {
  const rec = labels[0]?.length ?? 1;
  const size = rec + 3072;
  const buf = Buffer.alloc(labels.length * size);
  labels.forEach((ls, i) => {
    const o = i * size;
    ls.forEach((l, k) => (buf[o + k] = l));
    const rgb = colour(i);
    for (let c = 0; c < 3; c++) buf.fill(rgb[c] as number, o + rec + c * 1024, o + rec + (c + 1) * 1024);
  });
  return buf;
}

export const CIFAR10_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export function writeCifar10(root: string, perBatch = 4, test = 5): string {
  const dir = path.join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  for (let b = 1; b <= 5; b++) {
    writeFileSync(path.join(dir, `data_batch_${b}.bin`), cifarRecords(Array.from({ length: perBatch }, (_, i) => [(b + i) % 10]), (i) => [i * 10, 100, 200]));
  }
  writeFileSync(path.join(dir, 'test_batch.bin'), cifarRecords(Array.from({ length: test }, (_, i) => [i % 10]), () => [255, 0, 0]));
  writeFileSync(path.join(dir, 'batches.meta.txt'), CIFAR10_NAMES.join('\n') + '\n\n');
  return dir;
}

export function writeCifar100(root: string, train = 6, test = 3): string {
  const dir = path.join(root, 'cifar-100-binary');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'train.bin'), cifarRecords(Array.from({ length: train }, (_, i) => [i % 20, (i * 7) % 100]), () => [0, 255, 0]));
  writeFileSync(path.join(dir, 'test.bin'), cifarRecords(Array.from({ length: test }, (_, i) => [19 - i, 99 - i]), () => [0, 0, 255]));
  writeFileSync(path.join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => (i === 1 ? 'aquarium_fish' : `fine_${i}`)).join('\n') + '\n');
  writeFileSync(path.join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse_${i}`).join('\n') + '\n');
  return dir;
}

/** Collect warnings instead of printing them. */
export function warnings(): { sink: (m: string) => void; list: string[] } {
  const list: string[] = [];
  return { sink: (m) => list.push(m), list };
}
