import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '@clip-ts/core';
import type { ImageProcessor } from '@clip-ts/core';
import { processRawChecked } from './errors.js';
import { Cifar100OptionsSchema, CifarOptionsSchema } from './schemas.js';
import type { Cifar100Options, CifarOptions } from './schemas.js';
import type { ClassificationDataset } from './types.js';
import { checkIndex } from './check-index.js';
import { parseOptions } from './options.js';
import { promptName } from './prompt-name.js';
import { realDir } from './safe-paths.js';

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;

interface CifarFile {
  name: string;
  data: Buffer;
  records: number;
}

/** What loadCifar10/loadCifar100 hand a CifarDataset: validated record files and the label layout. */
interface CifarDatasetOptions {
  /** `cifar10`, `cifar100` or `cifar100-coarse`. */
  name: string;
  split: string;
  files: readonly CifarFile[];
  /** Bytes per record: label byte(s) then 3072 pixel bytes. */
  recordSize: number;
  /** Which label byte of a record is the label (CIFAR-100: 0 coarse, 1 fine). */
  labelOffset: number;
  classNames: readonly string[];
  rawClassNames: readonly string[];
}

/**
 * CIFAR-10/100 in the binary format: fixed-size records of label byte(s) followed by 3072 pixel bytes
 * (the R plane, then G, then B, each 32×32 row-major). Records stay in the file buffers; loadImage
 * interleaves one to RGB and sends it through the processor (which upsamples it to the model's size).
 */
export class CifarDataset implements ClassificationDataset {
  readonly length: number;
  readonly onBadImage = 'error' as const;
  private readonly starts: number[];
  private fp: string | undefined;

  readonly name: string;
  readonly split: string;
  readonly classNames: readonly string[];
  /** Class names exactly as in the label-names file (`aquarium_fish`). */
  readonly rawClassNames: readonly string[];
  private readonly files: readonly CifarFile[];
  private readonly recordSize: number;
  private readonly labelOffset: number;

  constructor(options: CifarDatasetOptions) {
    this.name = options.name;
    this.split = options.split;
    this.files = options.files;
    this.recordSize = options.recordSize;
    this.labelOffset = options.labelOffset;
    this.classNames = options.classNames;
    this.rawClassNames = options.rawClassNames;
    this.starts = [];
    let n = 0;
    for (const f of this.files) {
      this.starts.push(n);
      n += f.records;
    }
    this.length = n;
  }

  private locate(index: number): { file: CifarFile; record: number } {
    checkIndex(index, this.length, `${this.name}/${this.split}`);
    let k = this.starts.length - 1;
    while ((this.starts[k] as number) > index) k--;
    return { file: this.files[k] as CifarFile, record: index - (this.starts[k] as number) };
  }

  label(index: number): number {
    const { file, record } = this.locate(index);
    return file.data[record * this.recordSize + this.labelOffset] as number;
  }

  imageKey(index: number): string {
    const { file, record } = this.locate(index);
    return `${file.name}#${record}`;
  }

  /** The record's pixels as interleaved RGB (HWC), 32×32×3 uint8. */
  rawImage(index: number): Uint8Array {
    const { file, record } = this.locate(index);
    const base = record * this.recordSize + (this.recordSize - PIXELS);
    const planes = file.data.subarray(base, base + PIXELS);
    const hwc = new Uint8Array(PIXELS);
    const plane = SIDE * SIDE;
    for (let p = 0; p < plane; p++) {
      hwc[p * 3] = planes[p] as number;
      hwc[p * 3 + 1] = planes[plane + p] as number;
      hwc[p * 3 + 2] = planes[2 * plane + p] as number;
    }
    return hwc;
  }

  loadImage(index: number, processor: ImageProcessor): Promise<Float32Array> {
    return processRawChecked(processor, this.rawImage(index), SIDE, SIDE, this.imageKey(index));
  }

  fingerprint(): string {
    if (this.fp === undefined) {
      const h = createHash('sha256');
      h.update(`${this.name}\0${this.split}\0${this.labelOffset}\0${this.classNames.join('\n')}\0`);
      for (const f of this.files) h.update(f.data);
      this.fp = h.digest('hex').slice(0, 16);
    }
    return this.fp;
  }
}

function findDir(root: string, sub: string, marker: string): string {
  const real = realDir(root, 'CIFAR root');
  if (existsSync(path.join(real, marker))) return real;
  const nested = path.join(real, sub);
  if (existsSync(path.join(nested, marker))) return nested;
  throw new DataError(`CIFAR: ${marker} not found in ${real} or ${nested}`);
}

function readNames(file: string, expected: number): string[] {
  if (!existsSync(file)) throw new DataError(`CIFAR: label names file not found: ${file}`);
  const names = readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (names.length !== expected) throw new DataError(`${file}: expected ${expected} class names, found ${names.length}`);
  return names;
}

/** Read and validate record files: size a whole number of records; every label byte in range. */
function readRecords(
  dir: string,
  names: readonly string[],
  recordSize: number,
  labels: ReadonlyArray<{ offset: number; classes: number; what: string }>,
): CifarFile[] {
  return names.map((name) => {
    const file = path.join(dir, name);
    if (!existsSync(file)) throw new DataError(`CIFAR: file not found: ${file}`);
    const data = readFileSync(file);
    if (data.length % recordSize !== 0) {
      throw new DataError(
        `${file}: ${data.length} bytes is not a whole number of ${recordSize}-byte records ` +
          `(${Math.floor(data.length / recordSize)} records and ${data.length % recordSize} bytes left over; truncated or wrong file?)`,
      );
    }
    const records = data.length / recordSize;
    for (let r = 0; r < records; r++) {
      for (const l of labels) {
        const v = data[r * recordSize + l.offset] as number;
        if (v >= l.classes) throw new DataError(`${file}: record ${r}: ${l.what} label ${v} out of range [0, ${l.classes})`);
      }
    }
    return { name, data, records };
  });
}

function nonEmpty(ds: CifarDataset, files: readonly string[]): CifarDataset {
  if (ds.length === 0) throw new DataError(`${ds.name} ${ds.split} split is empty (${files.join(', ')} hold no records)`);
  return ds;
}

export interface CifarSplits {
  train: CifarDataset;
  test: CifarDataset;
}

/** CIFAR-10 binary version: `root` is cifar-10-batches-bin/ or its parent. */
export function loadCifar10(root: string, options: CifarOptions = {}): CifarSplits {
  parseOptions(CifarOptionsSchema, options, 'loadCifar10');
  const dir = findDir(root, 'cifar-10-batches-bin', 'batches.meta.txt');
  const raw = readNames(path.join(dir, 'batches.meta.txt'), 10);
  const classNames = raw.map(promptName);
  const recordSize = 1 + PIXELS;
  const labels = [{ offset: 0, classes: 10, what: 'class' }];
  const trainFiles = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
  const make = (split: string, names: string[]) =>
    nonEmpty(
      new CifarDataset({ name: 'cifar10', split, files: readRecords(dir, names, recordSize, labels), recordSize, labelOffset: 0, classNames, rawClassNames: raw }),
      names,
    );
  return { train: make('train', trainFiles), test: make('test', ['test_batch.bin']) };
}

/** CIFAR-100 binary version: `root` is cifar-100-binary/ or its parent; fine (100) or coarse (20) labels. */
export function loadCifar100(root: string, options: Cifar100Options = {}): CifarSplits {
  const opts = parseOptions(Cifar100OptionsSchema, options, 'loadCifar100');
  const dir = findDir(root, 'cifar-100-binary', 'fine_label_names.txt');
  const fine = opts.labels === 'fine';
  const raw = fine ? readNames(path.join(dir, 'fine_label_names.txt'), 100) : readNames(path.join(dir, 'coarse_label_names.txt'), 20);
  const classNames = raw.map(promptName);
  const recordSize = 2 + PIXELS;
  const labels = [
    { offset: 0, classes: 20, what: 'coarse' },
    { offset: 1, classes: 100, what: 'fine' },
  ];
  const make = (split: string, name: string) =>
    nonEmpty(
      new CifarDataset({
        name: fine ? 'cifar100' : 'cifar100-coarse',
        split,
        files: readRecords(dir, [name], recordSize, labels),
        recordSize,
        labelOffset: fine ? 1 : 0,
        classNames,
        rawClassNames: raw,
      }),
      [name],
    );
  return { train: make('train', 'train.bin'), test: make('test', 'test.bin') };
}
