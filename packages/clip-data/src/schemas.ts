import { z } from 'zod';
import type { CaptionTokenizer, ImageProcessor } from '@clip-ts/core';
import type { WarningSink } from './types.js';
import { AugmentOptionsSchema } from './augment/options.js';

/** zod schemas for every dataset and loader option; loaders parse their options with these. */

const fn = <T>(what: string) => z.custom<T>((v) => typeof v === 'function', `expected ${what}`);
const warning = fn<WarningSink>('a function (message: string) => void');
const onBadImage = z.enum(['error', 'skip']).default('error');
const onMissing = z.enum(['error', 'skip']).default('error');
const path = z.string().min(1);
/** Caption-file bytes that are not UTF-8: 'warn' names the lines (decoded as U+FFFD), 'error' refuses the file. */
const invalidUtf8 = z.enum(['warn', 'error']).default('warn');

export const Flickr8kOptionsSchema = z.strictObject({
  /** captions.txt (CSV) or Flickr8k.token.txt; default: found under the root. */
  captionsFile: path.optional(),
  /** Image directory; default: images/, Images/, Flicker8k_Dataset/ or Flickr8k_Dataset/ under the root. */
  imagesDir: path.optional(),
  /** Split lists; default: Flickr_8k.{train,dev,test}Images.txt under the root or Flickr8k_text/. */
  splitFiles: z.strictObject({ train: path.optional(), val: path.optional(), test: path.optional() }).optional(),
  /** When there are no split files (e.g. the Kaggle copy): a seeded random split of the captioned images. */
  randomSplit: z
    .strictObject({
      seed: z.number().int().nonnegative(),
      val: z.number().int().positive().default(1000),
      test: z.number().int().positive().default(1000),
    })
    .optional(),
  onMissing,
  onBadImage,
  invalidUtf8,
  onWarning: warning.optional(),
});
export type Flickr8kOptions = z.input<typeof Flickr8kOptionsSchema>;

export const CifarOptionsSchema = z.strictObject({});
export type CifarOptions = z.input<typeof CifarOptionsSchema>;

export const Cifar100OptionsSchema = z.strictObject({
  /** Which label byte to use: the 100 fine classes (default) or the 20 coarse superclasses. */
  labels: z.enum(['fine', 'coarse']).default('fine'),
});
export type Cifar100Options = z.input<typeof Cifar100OptionsSchema>;

/** The SVHN cropped-digits files: `train_32x32.mat`, `test_32x32.mat`, `extra_32x32.mat`. */
export const SVHN_SPLITS = ['train', 'test', 'extra'] as const;
export const SvhnOptionsSchema = z.strictObject({
  /** Which file to read (default test). */
  split: z.enum(SVHN_SPLITS).default('test'),
});
export type SvhnOptions = z.input<typeof SvhnOptionsSchema>;

export const ImageFolderOptionsSchema = z.strictObject({
  /** Dataset split label (default: the directory's base name). */
  split: z.string().min(1).optional(),
  /** File extensions counted as images (lower case, with dot). */
  extensions: z.array(z.string().regex(/^\.[a-z0-9]+$/)).min(1).default(['.jpg', '.jpeg', '.png', '.webp']),
  onBadImage,
  onWarning: warning.optional(),
});
export type ImageFolderOptions = z.input<typeof ImageFolderOptionsSchema>;

export const CaptionCsvOptionsSchema = z.strictObject({
  /** Keep only rows whose `split` column equals this (the CSV must have a split column). Also the dataset's split label. */
  split: z.string().min(1).optional(),
  /** File name looked up when a directory is given. */
  fileName: z.string().min(1).default('captions.csv'),
  /** Image directory relative to the CSV's directory (default: the CSV's directory). */
  imagesDir: path.optional(),
  onMissing,
  onBadImage,
  invalidUtf8,
  onWarning: warning.optional(),
});
export type CaptionCsvOptions = z.input<typeof CaptionCsvOptionsSchema>;

const count = z.number().int().positive();
export const ShapesOptionsSchema = z.strictObject({
  seed: z.number().int().nonnegative().default(0),
  /** Render size in pixels (square); the image processor resizes to the model's size. */
  imageSize: z.number().int().min(16).max(512).default(64),
  trainSize: count.default(4000),
  valSize: count.default(500),
  testSize: count.default(500),
  /** Images of held-out (colour, shape) combinations in `heldOut` (default: testSize). */
  heldOutSize: count.optional(),
  /** Blurry/low-resolution variant: true = half the images, or a fraction in [0, 1]. Their captions say so. */
  blurry: z.union([z.boolean(), z.number().min(0).max(1)]).default(false),
  /** Fraction of images with two shapes ("a red circle and a blue square"). */
  twoShapes: z.number().min(0).max(1).default(0),
});
export type ShapesOptions = z.input<typeof ShapesOptionsSchema>;

export const ZeroShotOptionsSchema = z.strictObject({
  size: count.optional(),
  /** Seed of the zero-shot images (default: derived from the set's seed, distinct from every split). */
  seed: z.number().int().nonnegative().optional(),
  /** Include seen combinations too (default false: held-out combinations only). */
  includeSeen: z.boolean().default(false),
  blurry: z.union([z.boolean(), z.number().min(0).max(1)]).optional(),
});
export type ZeroShotOptions = z.input<typeof ZeroShotOptionsSchema>;

const loaderCommon = {
  batchSize: z.number().int().positive(),
  imageProcessor: z.custom<ImageProcessor>(
    (v) => typeof v === 'object' && v !== null && typeof (v as ImageProcessor).processFile === 'function',
    'expected an ImageProcessor',
  ),
  shuffle: z.boolean().default(false),
  seed: z.number().int().nonnegative().default(0),
  dropLast: z.boolean().default(false),
  /** Batches prepared ahead of the one the consumer holds. */
  prefetch: z.number().int().nonnegative().default(2),
  /** Images decoded at once (sharp runs them on libuv threads). */
  concurrency: z.number().int().positive().default(4),
  /** Default: the dataset's onBadImage, else 'error'. */
  onBadImage: z.enum(['error', 'skip']).optional(),
  /** Keep decoded images in memory across epochs (costs length*3*H*W*4 bytes). */
  cache: z.boolean().default(false),
  onWarning: warning.optional(),
  /**
   * Seeded training augmentation (random resized crop, flip, colour jitter), drawn per (seed, epoch,
   * index). For training loaders only; cannot be combined with `cache` (each epoch's pixels differ).
   */
  augment: AugmentOptionsSchema.optional(),
};

export const CaptionLoaderOptionsSchema = z.strictObject({
  ...loaderCommon,
  tokenizer: z.custom<CaptionTokenizer>(
    (v) => typeof v === 'object' && v !== null && typeof (v as CaptionTokenizer).encode === 'function',
    'expected a CaptionTokenizer',
  ),
  maxLength: z.number().int().min(2).default(40),
  captionPick: z.enum(['random', 'first']).default('random'),
});
export type CaptionLoaderOptions = z.input<typeof CaptionLoaderOptionsSchema>;

export const ClassificationLoaderOptionsSchema = z.strictObject(loaderCommon);
export type ClassificationLoaderOptions = z.input<typeof ClassificationLoaderOptionsSchema>;
