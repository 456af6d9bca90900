import type { ImageProcessor } from '@clip-ts/core';

/** What to do with an image that cannot be decoded: throw a {@link BadImageError}, or skip it and count it. */
export type OnBadImage = 'error' | 'skip';
/** What to do with a split entry that has no caption or no image file. */
export type OnMissing = 'error' | 'skip';
/** Receives warnings (duplicates, skipped entries). Defaults to `process.emitWarning`. */
export type WarningSink = (message: string) => void;

/** Common to every dataset: a fixed, ordered list of images that can be decoded on demand. No tensors. */
export interface ImageDataset {
  readonly name: string;
  readonly split: string;
  /** Number of images. */
  readonly length: number;
  /** Stable id of the image, e.g. its path relative to the dataset root. */
  imageKey(index: number): string;
  /**
   * Decode, resize and normalise image `index` with `processor`: float32 CHW of length
   * 3 * processor.height * processor.width, owned by the caller. An undecodable image rejects with a
   * {@link BadImageError} naming it.
   */
  loadImage(index: number, processor: ImageProcessor): Promise<Float32Array>;
  /**
   * Optional: the file that loadImage(index, p) decodes with `p.processFile` and nothing else. With it,
   * loaders decode whole batches through `processor.processFiles` (worker threads) when the processor has it.
   */
  imageFile?(index: number): string;
  /** Stable hash of the contents list (keys, captions/labels), for cache keys. */
  fingerprint(): string;
  /** Default policy for loaders when an image cannot be decoded (from the dataset options). */
  readonly onBadImage?: OnBadImage;
}

export interface ImageCaptionDataset extends ImageDataset {
  /** All captions of image `index` (at least one). */
  captions(index: number): readonly string[];
}

export interface ClassificationDataset extends ImageDataset {
  /** Prompt-ready class names (e.g. underscores replaced by spaces), indexed by label. */
  readonly classNames: readonly string[];
  /** Label of image `index`, in [0, classNames.length). */
  label(index: number): number;
}
