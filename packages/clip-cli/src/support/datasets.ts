import { ValueError } from '@clip-ts/core';
import {
  createShapes,
  loadCaptionCsv,
  loadCifar10,
  loadCifar100,
  loadFlickr8k,
  loadImageFolder,
  loadSvhn,
  SVHN_SPLITS,
  type ClassificationDataset,
  type ImageCaptionDataset,
  type ShapesOptions,
} from '@clip-ts/data';
import type { CaptionDatasetKind, ClassificationDatasetKind } from './options.js';

/**
 * The shapes set the demo trains on. `--dataset shapes` in eval/zeroshot rebuilds exactly this set
 * (it is deterministic in these options), so a demo checkpoint can be evaluated on its own test split
 * and held-out combinations.
 */
export const DEMO_SHAPES: Readonly<Required<Pick<ShapesOptions, 'seed' | 'imageSize' | 'trainSize' | 'valSize' | 'testSize' | 'heldOutSize'>>> = {
  seed: 42,
  imageSize: 32,
  trainSize: 6000,
  valSize: 500,
  testSize: 500,
  heldOutSize: 600,
};

function requireRoot(kind: string, root: string | undefined): string {
  if (root === undefined || root === '') throw new ValueError(`--dataset ${kind} needs --root DIR`);
  return root;
}

/** `dev` is Flickr8k's name for the validation split. */
function normaliseSplit(split: string): string {
  return split === 'dev' ? 'val' : split;
}

function pick<T>(splits: Record<string, T>, split: string, what: string): T {
  const s = normaliseSplit(split);
  const ds = splits[s];
  if (ds === undefined) {
    throw new ValueError(`${what} has no split '${split}'; available: ${Object.keys(splits).join(', ')}`);
  }
  return ds;
}

/**
 * The caption dataset a command evaluates on. `split` defaults to test; for `csv` the split selects
 * rows by the CSV's `split` column when given, else every row is used.
 */
export function buildCaptionDataset(kind: CaptionDatasetKind, root: string | undefined, split: string | undefined): ImageCaptionDataset {
  switch (kind) {
    case 'flickr8k': {
      const f = loadFlickr8k(requireRoot(kind, root));
      return pick({ train: f.train, val: f.val, test: f.test }, split ?? 'test', `Flickr8k at ${root}`);
    }
    case 'csv':
      return loadCaptionCsv(requireRoot(kind, root), split === undefined ? {} : { split });
    case 'shapes': {
      const s = createShapes(DEMO_SHAPES);
      return pick({ train: s.train, val: s.val, test: s.test, heldOut: s.heldOut }, split ?? 'test', 'the shapes set');
    }
  }
}

/**
 * The classification dataset for zero-shot. CIFAR uses its test split unless `split` says train; an
 * image folder is the whole folder; shapes are the held-out (colour, shape) combinations, classified
 * among all 30 colour–shape names (`shapes-heldout` restricts the candidates to the held-out names).
 * SVHN reads `<split>_32x32.mat` (test unless `split` says train or extra).
 */
export function buildClassificationDataset(kind: ClassificationDatasetKind, root: string | undefined, split: string | undefined): ClassificationDataset {
  switch (kind) {
    case 'cifar10': {
      const c = loadCifar10(requireRoot(kind, root));
      return pick({ train: c.train, test: c.test }, split ?? 'test', `CIFAR-10 at ${root}`);
    }
    case 'cifar100': {
      const c = loadCifar100(requireRoot(kind, root));
      return pick({ train: c.train, test: c.test }, split ?? 'test', `CIFAR-100 at ${root}`);
    }
    case 'imagefolder':
      return loadImageFolder(requireRoot(kind, root), split === undefined ? {} : { split });
    case 'shapes':
      return createShapes(DEMO_SHAPES).zeroShot();
    case 'svhn': {
      const s = split ?? 'test';
      if (!(SVHN_SPLITS as readonly string[]).includes(s)) throw new ValueError(`SVHN has no split '${s}'; available: ${SVHN_SPLITS.join(', ')}`);
      return loadSvhn(requireRoot(kind, root), { split: s as (typeof SVHN_SPLITS)[number] });
    }
  }
}
