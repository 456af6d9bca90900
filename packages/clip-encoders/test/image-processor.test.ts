import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { ClipError, ConfigError, DataError, initBackend } from '@clip-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIP_MEAN,
  CLIP_STD,
  optionsFromPreprocessorConfig,
  preprocessorConfigFor,
  toPixelTensor,
} from '../src/image-processor.js';
import { ClipImageProcessor, loadImageProcessor } from '../src/image-decode.js';
import { resizeRgb8, type ResampleFilter } from '../src/resample.js';

const FIX = fileURLToPath(new URL('./fixtures/image/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'clip-img-'));

interface Ref {
  mean: number[];
  std: number[];
  cases: Array<{ height: number; width: number; chw_f32_base64: string }>;
  pil_resize: Array<{ filter: ResampleFilter; height: number; width: number; hwc_u8_base64: string }>;
}
let ref: Ref;

beforeAll(async () => {
  await initBackend('cpu');
  ref = JSON.parse(await readFile(join(FIX, 'torchvision-ref.json'), 'utf8')) as Ref;
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function f32(b64: string): Float32Array {
  const b = Buffer.from(b64, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}
const solid = (w: number, h: number, channels: 1 | 3 | 4, value: number[]): Buffer => {
  const px = Buffer.alloc(w * h * channels);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < channels; c++) px[i * channels + c] = value[c] as number;
  return px;
};
const png = (px: Buffer, w: number, h: number, channels: 1 | 3 | 4): Promise<Buffer> =>
  sharp(px, { raw: { width: w, height: h, channels } }).png().toBuffer();

describe('parity with torchvision / Pillow (fixture made by fixtures/image/make_ref.py)', () => {
  it('Resize((H, W)) bilinear → ToTensor → Normalize(CLIP) agrees to float32 rounding (tolerance 1e-6)', async () => {
    expect(ref.mean).toEqual([...CLIP_MEAN]);
    expect(ref.std).toEqual([...CLIP_STD]);
    for (const c of ref.cases) {
      const p = new ClipImageProcessor({ height: c.height, width: c.width, resizer: 'pillow' });
      const got = await p.processFile(join(FIX, 'gradient.png'));
      // Pillow's resample is reproduced bit-exactly, so only the float32 normalisation can differ.
      expect(maxAbsDiff(got, f32(c.chw_f32_base64)), `${c.height}x${c.width}`).toBeLessThan(1e-6);
    }
  });

  it('resizeRgb8 equals Pillow Image.resize exactly for every filter, shrinking and enlarging', async () => {
    const { data, info } = await sharp(join(FIX, 'gradient.png')).raw().toBuffer({ resolveWithObject: true });
    expect(ref.pil_resize.length).toBe(12);
    for (const c of ref.pil_resize) {
      const got = resizeRgb8(new Uint8Array(data), info.width, info.height, c.width, c.height, c.filter);
      expect(maxAbsDiff(got, Buffer.from(c.hwc_u8_base64, 'base64')), `${c.filter} ${c.height}x${c.width}`).toBe(0);
    }
  });

  it("is not sharp's resize: libvips' corner-aligned enlargement would be far off (guards the choice)", async () => {
    const c = ref.cases[1]!;
    const { data } = await sharp(join(FIX, 'gradient.png'))
      .resize(c.width, c.height, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    const viaSharp = new ClipImageProcessor({ height: c.height, width: c.width, doResize: false }).processRawSync(
      new Uint8Array(data),
      c.width,
      c.height,
      3,
      'sharp-resized',
    );
    expect(maxAbsDiff(viaSharp, f32(c.chw_f32_base64))).toBeGreaterThan(0.5);
  });
});

describe('ClipImageProcessor', () => {
  it('defaults to 224x224 CHW float32 with CLIP mean/std', async () => {
    const p = new ClipImageProcessor();
    expect([p.height, p.width]).toEqual([224, 224]);
    const out = await p.processBuffer(await png(solid(50, 30, 3, [0, 0, 0]), 50, 30, 3), 'black.png');
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(3 * 224 * 224);
    expect(out[0]).toBeCloseTo(-CLIP_MEAN[0] / CLIP_STD[0], 6);
  });

  it('keeps channel order R, G, B: a pure red image gives (1-mean_r)/std_r in channel 0 only', async () => {
    const p = new ClipImageProcessor({ height: 8, width: 6 });
    const out = await p.processBuffer(await png(solid(20, 10, 3, [255, 0, 0]), 20, 10, 3), 'red.png');
    const plane = 8 * 6;
    const expected = [(1 - CLIP_MEAN[0]) / CLIP_STD[0], -CLIP_MEAN[1] / CLIP_STD[1], -CLIP_MEAN[2] / CLIP_STD[2]];
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < plane; i++) expect(out[c * plane + i]).toBeCloseTo(expected[c]!, 5);
    }
  });

  it('lays out CHW row-major: a left/right split image stays left/right in every plane', () => {
    const w = 4;
    const h = 2;
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(x < 2 ? [255, 255, 255] : [0, 0, 0], (y * w + x) * 3);
    const p = new ClipImageProcessor({ height: h, width: w, doNormalize: false });
    const out = p.processRawSync(px, w, h, 3, 'split');
    expect(Array.from(out)).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]);
  });

  it('converts grayscale to three equal channels (file and raw)', async () => {
    const p = new ClipImageProcessor({ height: 4, width: 4, doNormalize: false });
    const gray = solid(4, 4, 1, [128]);
    const fromFile = await p.processBuffer(await png(gray, 4, 4, 1), 'gray.png');
    const fromRaw = p.processRawSync(gray, 4, 4, 1, 'gray');
    for (const out of [fromFile, fromRaw]) for (const v of out) expect(v).toBeCloseTo(128 / 255, 6);
  });

  it("drops alpha by default (PIL convert('RGB')), or composites on white when asked", async () => {
    const rgba = solid(4, 4, 4, [255, 0, 0, 0]); // fully transparent red
    const bytes = await png(rgba, 4, 4, 4);
    const drop = new ClipImageProcessor({ height: 4, width: 4, doNormalize: false });
    const white = new ClipImageProcessor({ height: 4, width: 4, doNormalize: false, alpha: 'white' });
    for (const out of [await drop.processBuffer(bytes, 'a.png'), drop.processRawSync(rgba, 4, 4, 4, 'a')]) {
      expect([out[0], out[16], out[32]]).toEqual([1, 0, 0]);
    }
    for (const out of [await white.processBuffer(bytes, 'a.png'), white.processRawSync(rgba, 4, 4, 4, 'a')]) {
      expect([out[0], out[16], out[32]]).toEqual([1, 1, 1]);
    }
    const half = solid(2, 2, 4, [0, 0, 0, 128]);
    expect(white.processRawSync(half, 2, 2, 4, 'half')[0]).toBeCloseTo(127 / 255, 6);
  });

  it('decodes JPEG and WebP the same as PNG (lossless WebP exactly, JPEG within compression error)', async () => {
    const { data, info } = await sharp(join(FIX, 'gradient.png')).raw().toBuffer({ resolveWithObject: true });
    const raw = sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } });
    const p = new ClipImageProcessor({ height: 24, width: 32 });
    const fromPng = await p.processFile(join(FIX, 'gradient.png'));
    const webp = await p.processBuffer(await raw.clone().webp({ lossless: true }).toBuffer(), 'x.webp');
    expect(maxAbsDiff(webp, fromPng)).toBeLessThan(1e-6);
    const jpeg = await p.processBuffer(await raw.clone().jpeg({ quality: 95 }).toBuffer(), 'x.jpg');
    expect(maxAbsDiff(jpeg, fromPng)).toBeLessThan(0.3);
    expect(maxAbsDiff(jpeg, fromPng)).toBeGreaterThan(0); // really went through the JPEG codec
  });

  it("processRaw of the pixels equals processFile of the same image (resizer 'pillow')", async () => {
    const { data, info } = await sharp(join(FIX, 'gradient.png')).raw().toBuffer({ resolveWithObject: true });
    const p = new ClipImageProcessor({ height: 32, width: 32, resizer: 'pillow' });
    const a = await p.processRaw(new Uint8Array(data), info.width, info.height, 3, 'raw');
    expect(maxAbsDiff(a, await p.processFile(join(FIX, 'gradient.png')))).toBe(0);
  });

  it('corrupt, truncated or missing images → DataError naming the file', async () => {
    const p = new ClipImageProcessor({ height: 8, width: 8 });
    const jpeg = await sharp(join(FIX, 'gradient.png')).jpeg().toBuffer();
    const truncated = join(tmp, 'truncated.jpg');
    await writeFile(truncated, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    const garbage = join(tmp, 'garbage.png');
    await writeFile(garbage, Buffer.from('definitely not an image'));
    for (const path of [truncated, garbage, join(tmp, 'missing.jpg')]) {
      const err = await p.processFile(path).catch((e: unknown) => e);
      expect(err, path).toBeInstanceOf(DataError);
      expect((err as Error).message).toContain(path);
    }
    expect(() => p.processRawSync(new Uint8Array(10), 4, 4, 3, 'cifar[7]')).toThrow(/cifar\[7\].*10 bytes/);
  });

  it('do_resize=false requires the exact size', () => {
    const p = new ClipImageProcessor({ height: 4, width: 4, doResize: false });
    expect(p.processRawSync(solid(4, 4, 3, [1, 2, 3]), 4, 4, 3, 'ok').length).toBe(48);
    expect(() => p.processRawSync(solid(5, 4, 3, [1, 2, 3]), 5, 4, 3, 'img5')).toThrow(/img5: is 5x4/);
  });

  it('shortest-edge resize + centre crop takes the middle of a wide image', () => {
    // 12x4 image: left third red, middle green, right blue → shortest edge 4 keeps 12x4, crop 4x4 = middle.
    const w = 12;
    const h = 4;
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[(y * w + x) * 3 + Math.floor(x / 4)] = 255;
    const p = new ClipImageProcessor({ shortestEdge: 4, height: 4, width: 4, doNormalize: false });
    const out = p.processRawSync(px, w, h, 3, 'wide');
    expect(out.subarray(16, 32).every((v) => v === 1)).toBe(true);
    expect(out.subarray(0, 16).every((v) => v === 0)).toBe(true);
  });

  it("resizer 'sharp' stays close to Pillow when shrinking, and says so in its fingerprint", async () => {
    const c = ref.cases[0]!; // 61x97 → 24x32: a shrink
    const fast = new ClipImageProcessor({ height: c.height, width: c.width, resizer: 'sharp' });
    const got = await fast.processFile(join(FIX, 'gradient.png'));
    const d = maxAbsDiff(got, f32(c.chw_f32_base64));
    expect(d).toBeGreaterThan(0); // really a different resampler
    expect(d).toBeLessThan(6 / 255 / Math.min(...CLIP_STD)); // ≤ 6 grey levels
    expect(fast.fingerprint()).not.toBe(new ClipImageProcessor({ height: c.height, width: c.width }).fingerprint());
  });

  it('fingerprint reflects every option', () => {
    const a = new ClipImageProcessor().fingerprint();
    expect(new ClipImageProcessor().fingerprint()).toBe(a);
    expect(new ClipImageProcessor({ resample: 'bicubic' }).fingerprint()).not.toBe(a);
    expect(new ClipImageProcessor({ mean: [0.5, 0.5, 0.5] }).fingerprint()).not.toBe(a);
  });
});

describe('preprocessor_config.json', () => {
  it('reads a ViT-style config (square size, mean/std 0.5, resample 2)', () => {
    const o = optionsFromPreprocessorConfig(
      {
        image_processor_type: 'ViTImageProcessor',
        do_resize: true,
        size: { height: 224, width: 224 },
        resample: 2,
        do_rescale: true,
        rescale_factor: 0.00392156862745098,
        do_normalize: true,
        image_mean: [0.5, 0.5, 0.5],
        image_std: [0.5, 0.5, 0.5],
      },
      'vit/preprocessor_config.json',
    );
    expect(o).toMatchObject({ height: 224, width: 224, resample: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(optionsFromPreprocessorConfig({ size: 384 }, 'x')).toMatchObject({ height: 384, width: 384 });
  });

  it('reads a CLIP-style config (shortest_edge + crop_size, bicubic)', () => {
    const o = optionsFromPreprocessorConfig(
      { size: { shortest_edge: 224 }, crop_size: { height: 224, width: 224 }, do_center_crop: true, resample: 3 },
      'clip/preprocessor_config.json',
    );
    expect(o).toMatchObject({ shortestEdge: 224, height: 224, width: 224, resample: 'bicubic' });
    expect(optionsFromPreprocessorConfig({ size: 256, crop_size: 224, do_center_crop: true }, 'x')).toMatchObject({
      shortestEdge: 256,
      height: 224,
      width: 224,
    });
  });

  it('names the bad key and the file', () => {
    expect(() => optionsFromPreprocessorConfig({ image_std: [0.5, 0, 0.5] }, 'm/preprocessor_config.json')).toThrow(
      /m\/preprocessor_config\.json[\s\S]*image_std/,
    );
    expect(() => optionsFromPreprocessorConfig({ size: { height: -1, width: 3 } }, 'p')).toThrow(ConfigError);
    expect(() => optionsFromPreprocessorConfig({ resample: 9 }, 'p')).toThrow(/resample/);
  });

  it('loadImageProcessor: file when present, defaults when absent, overrides win', async () => {
    const dir = join(tmp, 'model');
    await mkdir(dir, { recursive: true });
    expect((await loadImageProcessor(dir)).fingerprint()).toBe(new ClipImageProcessor().fingerprint());
    await writeFile(join(dir, 'preprocessor_config.json'), JSON.stringify({ size: { height: 32, width: 48 }, image_mean: 0.5, image_std: 0.5 }));
    const p = await loadImageProcessor(dir);
    expect([p.height, p.width]).toEqual([32, 48]);
    expect(p.options.mean).toEqual([0.5, 0.5, 0.5]);
    const o = await loadImageProcessor(dir, { mean: CLIP_MEAN, std: CLIP_STD });
    expect(o.options.mean).toEqual([...CLIP_MEAN]);
    await writeFile(join(dir, 'preprocessor_config.json'), '{oops');
    const err = await loadImageProcessor(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClipError);
    expect((err as Error).message).toContain(join(dir, 'preprocessor_config.json'));
  });
});

describe('toPixelTensor', () => {
  it('stacks CHW arrays into [B, 3, H, W] the caller owns; rejects wrong sizes', () => {
    const before = tf.memory().numTensors;
    const a = new Float32Array(3 * 2 * 2).fill(1);
    const b = new Float32Array(3 * 2 * 2).fill(2);
    for (let i = 0; i < 3; i++) {
      const t = toPixelTensor([a, b], 2, 2);
      expect(t.shape).toEqual([2, 3, 2, 2]);
      expect(t.dtype).toBe('float32');
      expect(Array.from(t.dataSync().subarray(10, 14))).toEqual([1, 1, 2, 2]);
      t.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(() => toPixelTensor([a, new Float32Array(5)], 2, 2)).toThrow(/image 1/);
    expect(() => toPixelTensor([], 2, 2)).toThrow(ClipError);
  });
});

describe('preprocessorConfigFor', () => {
  it('writes a preprocessor_config.json that loadImageProcessor reads back as the same options', async () => {
    const dir = join(tmp, 'roundtrip');
    await mkdir(dir, { recursive: true });
    const options = { height: 48, width: 40, mean: [0.1, 0.2, 0.3] as const, std: [0.4, 0.5, 0.6] as const, resample: 'bicubic' as const, rescaleFactor: 1 / 255 };
    await writeFile(join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessorConfigFor(options)));
    const back = await loadImageProcessor(dir);
    expect(back.options).toMatchObject({ ...options, doResize: true, doRescale: true, doNormalize: true });
    // Defaults are written out explicitly: HF would read a missing mean/std as 0.5.
    expect(preprocessorConfigFor({})).toMatchObject({ size: { height: 224, width: 224 }, resample: 2, image_mean: [...CLIP_MEAN], image_std: [...CLIP_STD] });
  });
});
