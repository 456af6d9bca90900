import type { ImageProcessor } from '@clip-ts/core';
import { DataError } from '@clip-ts/core';
import { isCaptionDataset, isClassificationDataset } from './stats.js';
import type { ClassificationDataset, ImageCaptionDataset, ImageDataset } from './types.js';
import { checkIndex } from './check-index.js';
import { hashStrings } from './fingerprint.js';

/**
 * A view of some images of a dataset (e.g. the first 500 for a quick run), in the order given. It keeps
 * the captions and/or labels of the original; `split` defaults to the original's.
 */
export function subset<D extends ImageCaptionDataset & ClassificationDataset>(ds: D, indices: readonly number[], split?: string): ImageCaptionDataset & ClassificationDataset;
export function subset(ds: ImageCaptionDataset, indices: readonly number[], split?: string): ImageCaptionDataset;
export function subset(ds: ClassificationDataset, indices: readonly number[], split?: string): ClassificationDataset;
export function subset(ds: ImageDataset, indices: readonly number[], split?: string): ImageDataset {
  if (indices.length === 0) throw new DataError(`subset of ${ds.name}/${ds.split}: the split is empty`);
  for (const i of indices) checkIndex(i, ds.length, `subset of ${ds.name}/${ds.split}`);
  const map = [...indices];
  const at = (i: number) => {
    checkIndex(i, map.length, `${ds.name}/${split ?? ds.split} (subset)`);
    return map[i] as number;
  };
  let fp: string | undefined;
  const view: ImageDataset & { -readonly [K in 'captions' | 'classNames' | 'label']?: (ImageCaptionDataset & ClassificationDataset)[K] } = {
    name: ds.name,
    split: split ?? ds.split,
    length: map.length,
    onBadImage: ds.onBadImage ?? 'error',
    imageKey: (i: number) => ds.imageKey(at(i)),
    loadImage: (i: number, p: ImageProcessor) => ds.loadImage(at(i), p),
    fingerprint: () => (fp ??= hashStrings([ds.fingerprint(), ...map.map(String)])),
  };
  const imageFile = ds.imageFile?.bind(ds);
  if (imageFile) view.imageFile = (i: number) => imageFile(at(i));
  if (isCaptionDataset(ds)) view.captions = (i: number) => ds.captions(at(i));
  if (isClassificationDataset(ds)) {
    view.classNames = ds.classNames;
    view.label = (i: number) => ds.label(at(i));
  }
  return view;
}
