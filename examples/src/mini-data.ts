/**
 * Miniature datasets in the exact on-disk formats of the real ones, so `--dry-run` and the tests exercise
 * the same loading code a user's download goes through. Contents are synthetic but not random noise:
 * each picture is a coloured shape and its captions name that colour and shape, so a model could learn them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng } from '@clip-ts/core';

const COLOURS: ReadonlyArray<readonly [string, readonly [number, number, number]]> = [
  ['red', [220, 30, 30]],
  ['green', [30, 180, 40]],
  ['blue', [30, 60, 220]],
  ['yellow', [235, 215, 30]],
];
const SHAPES = ['square', 'circle', 'stripe'] as const;

/** Raw RGB pixels (HWC uint8) of a coloured shape on a grey background, with a little noise. */
function drawShape(size: number, rgb: readonly [number, number, number], shape: (typeof SHAPES)[number], rng: Rng): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  const cx = size / 2 + (rng.next() - 0.5) * size * 0.2;
  const cy = size / 2 + (rng.next() - 0.5) * size * 0.2;
  const r = size * (0.22 + rng.next() * 0.1);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inside =
        shape === 'square'
          ? Math.abs(x - cx) < r && Math.abs(y - cy) < r
          : shape === 'circle'
            ? (x - cx) ** 2 + (y - cy) ** 2 < r * r
            : Math.abs(y - cy) < r / 3;
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) {
        const base = inside ? (rgb[c] ?? 0) : 128;
        px[o + c] = Math.max(0, Math.min(255, Math.round(base + (rng.next() - 0.5) * 20)));
      }
    }
  }
  return px;
}

export interface MiniFlickr8kOptions {
  /** Images per split (train, dev, test). Default 8/4/4. */
  train?: number;
  dev?: number;
  test?: number;
  /** Side of the generated JPEGs. Default 32. */
  imageSize?: number;
  seed?: number;
}

/** Names of the official Flickr8k split files (from Flickr8k_text.zip). */
export const FLICKR8K_SPLIT_FILES = {
  train: 'Flickr_8k.trainImages.txt',
  dev: 'Flickr_8k.devImages.txt',
  test: 'Flickr_8k.testImages.txt',
} as const;

/**
 * Write a Flickr8k directory as distributed (Kaggle layout + the official split files):
 *   root/Images/<id>.jpg, root/captions.txt ("image,caption" CSV, 5 captions per image),
 *   root/Flickr_8k.{train,dev,test}Images.txt (one image file name per line).
 * Returns the number of images written.
 */
export async function writeMiniFlickr8k(root: string, options: MiniFlickr8kOptions = {}): Promise<number> {
  const counts = { train: options.train ?? 8, dev: options.dev ?? 4, test: options.test ?? 4 };
  const size = options.imageSize ?? 32;
  const rng = new Rng(options.seed ?? 42);
  await mkdir(join(root, 'Images'), { recursive: true });
  const captionLines = ['image,caption'];
  let n = 0;
  for (const split of ['train', 'dev', 'test'] as const) {
    const names: string[] = [];
    for (let i = 0; i < counts[split]; i++, n++) {
      const [colour, rgb] = COLOURS[n % COLOURS.length] as (typeof COLOURS)[number];
      const shape = SHAPES[Math.floor(n / COLOURS.length) % SHAPES.length] as (typeof SHAPES)[number];
      // Flickr ids look like 1000268201_693b08cb0e.jpg.
      const name = `${1000000000 + n * 7919}_${(n * 2654435761 >>> 0).toString(16).padStart(10, '0').slice(0, 10)}.jpg`;
      const pixels = drawShape(size, rgb, shape, rng);
      await sharp(Buffer.from(pixels), { raw: { width: size, height: size, channels: 3 } })
        .jpeg({ quality: 90 })
        .toFile(join(root, 'Images', name));
      names.push(name);
      const captions = [
        `A ${colour} ${shape} on a grey background.`,
        `a ${shape} that is ${colour}`,
        `There is a ${colour} ${shape} in the middle of the picture .`,
        `"A picture of a ${colour} ${shape}, slightly off centre."`,
        `${colour} ${shape}`,
      ];
      for (const c of captions) captionLines.push(`${name},${c}`);
    }
    await writeFile(join(root, FLICKR8K_SPLIT_FILES[split]), names.join('\n') + '\n');
  }
  await writeFile(join(root, 'captions.txt'), captionLines.join('\n') + '\n');
  return n;
}

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
] as const;

export interface MiniCifar10Options {
  /** Records in each of the 5 training batches. Default 10. */
  perTrainBatch?: number;
  /** Records in test_batch.bin. Default 20. */
  test?: number;
  seed?: number;
}

/**
 * Write `root/cifar-10-batches-bin/` as in cifar-10-binary.tar.gz: data_batch_1..5.bin and test_batch.bin
 * of 3073-byte records (1 label byte, then 1024 R, 1024 G, 1024 B bytes, row-major 32×32) and
 * batches.meta.txt (one class name per line). Returns the path of the batches directory.
 */
export async function writeMiniCifar10(root: string, options: MiniCifar10Options = {}): Promise<string> {
  const dir = join(root, 'cifar-10-batches-bin');
  await mkdir(dir, { recursive: true });
  const rng = new Rng(options.seed ?? 42);
  const batch = async (file: string, count: number, offset: number): Promise<void> => {
    const buf = Buffer.alloc(count * 3073);
    for (let i = 0; i < count; i++) {
      const label = (offset + i) % 10;
      const [, rgb] = COLOURS[label % COLOURS.length] as (typeof COLOURS)[number];
      const shape = SHAPES[label % SHAPES.length] as (typeof SHAPES)[number];
      const hwc = drawShape(32, rgb, shape, rng);
      const o = i * 3073;
      buf[o] = label;
      for (let p = 0; p < 1024; p++) {
        for (let c = 0; c < 3; c++) buf[o + 1 + c * 1024 + p] = hwc[p * 3 + c] ?? 0;
      }
    }
    await writeFile(join(dir, file), buf);
  };
  const per = options.perTrainBatch ?? 10;
  for (let b = 1; b <= 5; b++) await batch(`data_batch_${b}.bin`, per, b * per);
  await batch('test_batch.bin', options.test ?? 20, 0);
  await writeFile(join(dir, 'batches.meta.txt'), CIFAR10_CLASSES.join('\n') + '\n\n');
  return dir;
}
