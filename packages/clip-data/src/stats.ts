import { tokenLengthStats } from '@clip-ts/core';
import type { CaptionTokenizer, TokenLengthStats } from '@clip-ts/core';
import type { ClassificationDataset, ImageCaptionDataset, ImageDataset } from './types.js';

/** Token-length summary (core's tokenLengthStats) plus how many captions `maxLength` truncates. */
export interface LengthStats extends TokenLengthStats {
  maxLength?: number;
  /** Captions longer than maxLength (the loader truncates them). */
  overMaxLength?: number;
}

export interface SplitStats {
  split: string;
  images: number;
  /** Total captions (caption sets only). */
  captions?: number;
  classes?: number;
  classNames?: readonly string[];
  /** Images per class, in label order (classification sets only). */
  classCounts?: number[];
  /** Token counts with special tokens, untruncated (caption sets, when a tokenizer is given). */
  tokenLengths?: LengthStats;
}

export function isCaptionDataset(ds: ImageDataset): ds is ImageCaptionDataset {
  return typeof (ds as Partial<ImageCaptionDataset>).captions === 'function';
}

export function isClassificationDataset(ds: ImageDataset): ds is ClassificationDataset {
  return Array.isArray((ds as Partial<ClassificationDataset>).classNames) && typeof (ds as Partial<ClassificationDataset>).label === 'function';
}

/** Statistics of token lengths, with the number of captions over `maxLength` when given. */
export function lengthStats(lengths: readonly number[], maxLength?: number): LengthStats {
  const out: LengthStats = tokenLengthStats(lengths);
  if (maxLength !== undefined) {
    out.maxLength = maxLength;
    out.overMaxLength = lengths.filter((v) => v > maxLength).length;
  }
  return out;
}

/** Every caption of a caption set, flattened, with the index of its image (for retrieval evaluation). */
export function allCaptions(ds: ImageCaptionDataset): { texts: string[]; imageIndex: number[] } {
  const texts: string[] = [];
  const imageIndex: number[] = [];
  for (let i = 0; i < ds.length; i++) {
    for (const c of ds.captions(i)) {
      texts.push(c);
      imageIndex.push(i);
    }
  }
  return { texts, imageIndex };
}

/** Counts (images, captions, classes) and caption token-length statistics of one split. No image is decoded. */
export function splitStats(ds: ImageDataset, options: { tokenizer?: CaptionTokenizer; maxLength?: number } = {}): SplitStats {
  const out: SplitStats = { split: ds.split, images: ds.length };
  if (isClassificationDataset(ds)) {
    out.classes = ds.classNames.length;
    out.classNames = ds.classNames;
    const counts = new Array<number>(ds.classNames.length).fill(0);
    for (let i = 0; i < ds.length; i++) {
      const l = ds.label(i);
      counts[l] = (counts[l] ?? 0) + 1;
    }
    out.classCounts = counts;
  }
  if (isCaptionDataset(ds)) {
    const { texts } = allCaptions(ds);
    out.captions = texts.length;
    if (options.tokenizer) out.tokenLengths = lengthStats(options.tokenizer.tokenLengths(texts), options.maxLength);
  }
  return out;
}
