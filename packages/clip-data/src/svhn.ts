import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '@clip-ts/core';
import type { ImageProcessor } from '@clip-ts/core';
import { checkIndex } from './check-index.js';
import { processRawChecked } from './errors.js';
import { matNumbers, readMatV5 } from './mat-v5.js';
import type { MatArray } from './mat-v5.js';
import { parseOptions } from './options.js';
import { realDir } from './safe-paths.js';
import { SvhnOptionsSchema } from './schemas.js';
import type { SvhnOptions } from './schemas.js';
import type { ClassificationDataset } from './types.js';

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;
/** Digit d is class d; the files store digit 0 as label 10. */
const SVHN_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/**
 * SVHN cropped digits (format 2) from one of the distributed MAT-files. The pixels stay in the file's
 * column-major layout (X[row, col, channel, image], row fastest); rawImage reorders one image to
 * interleaved RGB and loadImage sends it through the processor, which upsamples it to the model's size.
 */
export class SvhnDataset implements ClassificationDataset {
  readonly name = 'svhn';
  readonly classNames = SVHN_CLASS_NAMES;
  readonly onBadImage = 'error' as const;
  readonly length: number;
  private fp: string | undefined;

  constructor(
    readonly split: string,
    /** The file's base name, for image keys. */
    private readonly file: string,
    /** N×3072 bytes: image n's column-major planes at n*3072. */
    private readonly pixels: Uint8Array,
    /** Digit per image, 0–9. */
    private readonly labels: Uint8Array,
  ) {
    this.length = labels.length;
  }

  label(index: number): number {
    checkIndex(index, this.length, `svhn/${this.split}`);
    return this.labels[index] as number;
  }

  imageKey(index: number): string {
    checkIndex(index, this.length, `svhn/${this.split}`);
    return `${this.file}#${index}`;
  }

  /** Image `index` as interleaved RGB (HWC), 32×32×3 uint8; a new array owned by the caller. */
  rawImage(index: number): Uint8Array {
    checkIndex(index, this.length, `svhn/${this.split}`);
    const src = this.pixels.subarray(index * PIXELS, (index + 1) * PIXELS);
    const hwc = new Uint8Array(PIXELS);
    for (let ch = 0; ch < 3; ch++) {
      for (let col = 0; col < SIDE; col++) {
        for (let row = 0; row < SIDE; row++) hwc[(row * SIDE + col) * 3 + ch] = src[ch * SIDE * SIDE + col * SIDE + row] as number;
      }
    }
    return hwc;
  }

  loadImage(index: number, processor: ImageProcessor): Promise<Float32Array> {
    return processRawChecked(processor, this.rawImage(index), SIDE, SIDE, this.imageKey(index));
  }

  fingerprint(): string {
    if (this.fp === undefined) {
      const h = createHash('sha256');
      h.update(`svhn\0${this.split}\0`);
      h.update(this.labels);
      h.update(this.pixels);
      this.fp = h.digest('hex').slice(0, 16);
    }
    return this.fp;
  }
}

function variable(arrays: readonly MatArray[], name: string, file: string): MatArray {
  const a = arrays.find((v) => v.name === name);
  if (a === undefined) {
    throw new DataError(`${file}: no variable '${name}' (found: ${arrays.map((v) => v.name).join(', ') || 'none'}); not an SVHN cropped-digits file?`);
  }
  return a;
}

/** X and y of an SVHN MAT-file, checked: X uint8 [32,32,3,N], y [N,1] with labels 1–10 (10 = digit 0). */
function readSvhnFile(file: string): { pixels: Uint8Array; labels: Uint8Array } {
  const arrays = readMatV5(readFileSync(file), file);
  const x = variable(arrays, 'X', file);
  const y = variable(arrays, 'y', file);
  const n = x.dims[3] ?? 0;
  if (x.className !== 'uint8' || x.storage !== 'uint8') throw new DataError(`${file}: variable 'X' is ${x.className}; SVHN images are uint8`);
  if (x.dims.length !== 4 || x.dims[0] !== SIDE || x.dims[1] !== SIDE || x.dims[2] !== 3) {
    throw new DataError(`${file}: variable 'X' has dimensions [${x.dims.join(', ')}]; SVHN cropped digits are [32, 32, 3, N]`);
  }
  if (y.dims.length !== 2 || Math.min(...y.dims) !== 1 || Math.max(...y.dims) !== n) {
    throw new DataError(`${file}: variable 'y' has dimensions [${y.dims.join(', ')}]; expected [${n}, 1] to match the ${n} images in X`);
  }
  const raw = matNumbers(y);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = raw[i] as number;
    if (!Number.isInteger(v) || v < 1 || v > 10) throw new DataError(`${file}: y(${i + 1}) = ${v}; SVHN labels are integers 1–10 (10 means digit 0)`);
    labels[i] = v % 10;
  }
  return { pixels: x.bytes, labels };
}

/**
 * SVHN cropped digits: `root` holds `train_32x32.mat`, `test_32x32.mat` and/or `extra_32x32.mat` as
 * distributed (MATLAB v5/v7 MAT-files); `split` picks one (default test). Class names are "0"…"9", so a
 * prompt template such as "a photo of the number {}." reads naturally. The whole file is read into memory
 * (the extra split inflates to about 1.6 GB).
 */
export function loadSvhn(root: string, options: SvhnOptions = {}): SvhnDataset {
  const { split } = parseOptions(SvhnOptionsSchema, options, 'loadSvhn');
  const dir = realDir(root, 'SVHN root');
  const name = `${split}_32x32.mat`;
  const file = path.join(dir, name);
  if (!existsSync(file)) throw new DataError(`SVHN: ${name} not found in ${dir}`);
  const { pixels, labels } = readSvhnFile(file);
  if (labels.length === 0) throw new DataError(`${file}: the svhn ${split} split is empty (X holds no images)`);
  return new SvhnDataset(split, name, pixels, labels);
}
