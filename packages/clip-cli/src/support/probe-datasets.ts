import { join } from 'node:path';
import { DataError, ValueError } from '@clip-ts/core';
import { createShapes, loadCaptionCsvSplits, loadCifar10, loadCifar100, loadImageFolder, loadSvhn, type ClassificationDataset, type ImageCaptionDataset } from '@clip-ts/data';
import { DEMO_SHAPES } from './datasets.js';
import type { ProbeDatasetKind } from './options.js';

// The train/test pairs `clip probe` fits and scores on. One entry per dataset kind: adding a dataset is
// adding its name to PROBE_DATASETS (options.ts) and a loader here (the Record type insists on both).

export interface ProbeSplits {
  train: ClassificationDataset;
  test: ClassificationDataset;
}

function requireRoot(kind: string, root: string | undefined): string {
  if (root === undefined || root === '') throw new ValueError(`--dataset ${kind} needs --root DIR`);
  return root;
}

/** The class names of both splits must agree, or train labels would mean other classes than test labels. */
function sameClasses(splits: ProbeSplits, where: string): ProbeSplits {
  const a = splits.train.classNames.join('\n');
  const b = splits.test.classNames.join('\n');
  if (a !== b) {
    throw new DataError(`${where}: train and test have different classes (train: ${splits.train.classNames.join(', ')}; test: ${splits.test.classNames.join(', ')})`);
  }
  return splits;
}

/**
 * A caption set whose (first) caption of each image is its class name, as a classification set. The class
 * list is shared by both splits (sorted union), so a class only in train still has a column.
 */
class CaptionClasses implements ClassificationDataset {
  readonly name: string;
  readonly split: string;
  readonly length: number;
  readonly onBadImage: ClassificationDataset['onBadImage'];
  constructor(
    private readonly ds: ImageCaptionDataset,
    readonly classNames: readonly string[],
  ) {
    this.name = ds.name;
    this.split = ds.split;
    this.length = ds.length;
    this.onBadImage = ds.onBadImage;
  }
  label(index: number): number {
    return this.classNames.indexOf((this.ds.captions(index)[0] as string).trim());
  }
  imageKey(index: number): string {
    return this.ds.imageKey(index);
  }
  loadImage(index: number, processor: Parameters<ClassificationDataset['loadImage']>[1]): Promise<Float32Array> {
    return this.ds.loadImage(index, processor);
  }
  fingerprint(): string {
    return this.ds.fingerprint();
  }
}

function csvSplits(root: string): ProbeSplits {
  const splits = loadCaptionCsvSplits(root);
  const { train, test } = splits;
  if (!train || !test) {
    throw new DataError(`caption CSV ${root}: clip probe needs rows with split 'train' and 'test' (found: ${Object.keys(splits).join(', ') || 'no split column'})`);
  }
  const names = new Set<string>();
  for (const ds of [train, test]) for (let i = 0; i < ds.length; i++) names.add((ds.captions(i)[0] as string).trim());
  const classNames = [...names].sort();
  return { train: new CaptionClasses(train, classNames), test: new CaptionClasses(test, classNames) };
}

export const PROBE_LOADERS: Readonly<Record<ProbeDatasetKind, (root: string | undefined) => ProbeSplits>> = {
  cifar10: (root) => loadCifar10(requireRoot('cifar10', root)),
  cifar100: (root) => loadCifar100(requireRoot('cifar100', root)),
  // The distributed train_32x32.mat / test_32x32.mat (extra_32x32.mat is not used for probing).
  svhn: (root) => {
    const r = requireRoot('svhn', root);
    return { train: loadSvhn(r, { split: 'train' }), test: loadSvhn(r, { split: 'test' }) };
  },
  // An image folder for probing is two folders of class directories: ROOT/train and ROOT/test.
  imagefolder: (root) => {
    const r = requireRoot('imagefolder', root);
    return sameClasses({ train: loadImageFolder(join(r, 'train'), { split: 'train' }), test: loadImageFolder(join(r, 'test'), { split: 'test' }) }, `image folder ${r}`);
  },
  // A caption CSV with a split column whose caption is the class name.
  csv: (root) => csvSplits(requireRoot('csv', root)),
  // The demo's shapes set: train and test images labelled by their first shape's "colour shape".
  shapes: () => {
    const s = createShapes(DEMO_SHAPES);
    return { train: s.train, test: s.test };
  },
};

export function buildProbeSplits(kind: ProbeDatasetKind, root: string | undefined): ProbeSplits {
  return PROBE_LOADERS[kind](root);
}
