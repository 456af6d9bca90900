import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, DataError, ValueError } from '@clip-ts/core';
import { loadSvhn, matNumbers, readMatV5 } from '@clip-ts/data';
import { TestProcessor, tempDir } from './helpers.js';

// The MAT-files are written by fixtures/svhn/make_mat.py, a writer following MathWorks' format document
// independently of this reader (regenerate: /usr/bin/python3 fixtures/svhn/make_mat.py).
const FIXTURES = fileURLToPath(new URL('./fixtures/svhn/', import.meta.url));
const good = path.join(FIXTURES, 'good');
const bad = (name: string): string => path.join(FIXTURES, 'bad', `${name}.mat`);

/** make_mat.py's pixel(r, c, ch, n) and label rule (digit n % 10). */
const pixel = (r: number, c: number, ch: number, n: number): number => (r * 7 + c * 3 + ch * 50 + n * 11) % 256;

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('clip-svhn-'));
});
afterEach(() => cleanup());

/** Load fixture bad/<name>.mat as the test split of a fresh root. */
function loadBad(name: string): unknown {
  copyFileSync(bad(name), path.join(dir, 'test_32x32.mat'));
  return loadSvhn(dir);
}

describe('SVHN cropped digits (MAT v5)', () => {
  it('reads plain little-endian, compressed little-endian and compressed big-endian files', () => {
    const cases = [
      { split: 'test', n: 12 }, // plain, y stored as double
      { split: 'train', n: 7 }, // miCOMPRESSED, y stored as uint8 as MATLAB writes it
      { split: 'extra', n: 3 }, // miCOMPRESSED, big-endian
    ] as const;
    for (const { split, n } of cases) {
      const ds = loadSvhn(good, { split });
      expect(ds.name).toBe('svhn');
      expect(ds.split).toBe(split);
      expect(ds.length).toBe(n);
      expect(ds.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      for (let i = 0; i < n; i++) expect(ds.label(i)).toBe(i % 10); // label 10 in the file is digit 0
      expect(ds.imageKey(n - 1)).toBe(`${split}_32x32.mat#${n - 1}`);
      const last = ds.rawImage(n - 1);
      for (const [r, c, ch] of [[0, 0, 0], [1, 2, 0], [2, 1, 1], [31, 5, 2], [17, 30, 1]] as const) {
        expect(last[(r * 32 + c) * 3 + ch]).toBe(pixel(r, c, ch, n - 1));
      }
    }
    expect(loadSvhn(good).split).toBe('test');
    expect(loadSvhn(good).fingerprint()).toMatch(/^[0-9a-f]{16}$/);
    expect(loadSvhn(good).fingerprint()).not.toBe(loadSvhn(good, { split: 'train' }).fingerprint());
  });

  it('every pixel of every image is reordered from column-major planes to RGB rows', () => {
    const ds = loadSvhn(good, { split: 'train' });
    for (let n = 0; n < ds.length; n++) {
      const px = ds.rawImage(n);
      const want = new Uint8Array(32 * 32 * 3);
      for (let r = 0; r < 32; r++) for (let c = 0; c < 32; c++) for (let ch = 0; ch < 3; ch++) want[(r * 32 + c) * 3 + ch] = pixel(r, c, ch, n);
      expect(px).toEqual(want);
    }
  });

  it('loadImage sends the 32×32 RGB image through the processor', async () => {
    const ds = loadSvhn(good);
    const out = await ds.loadImage(4, new TestProcessor(32, 32, [0, 0, 0], [1, 1, 1]));
    expect(out.length).toBe(3 * 32 * 32);
    // CHW: channel 2, row 3, col 9.
    expect(out[2 * 1024 + 3 * 32 + 9]).toBeCloseTo(pixel(3, 9, 2, 4) / 255, 5);
    expect(() => ds.label(12)).toThrow(ValueError);
  });

  it('readMatV5 exposes the arrays as stored', () => {
    const arrays = readMatV5(readFileSync(path.join(good, 'train_32x32.mat')), 'train_32x32.mat');
    expect(arrays.map((a) => [a.name, a.className, a.storage, a.dims])).toEqual([
      ['X', 'uint8', 'uint8', [32, 32, 3, 7]],
      ['y', 'double', 'uint8', [7, 1]],
    ]);
    expect(Array.from(matNumbers(arrays[1] as (typeof arrays)[number]))).toEqual([10, 1, 2, 3, 4, 5, 6]);
  });

  it('missing files, roots and bad options are typed errors', () => {
    expect(() => loadSvhn(dir)).toThrow(/SVHN: test_32x32\.mat not found in/);
    expect(() => loadSvhn(path.join(dir, 'nowhere'))).toThrow(DataError);
    expect(() => loadSvhn(good, { split: 'val' as 'test' })).toThrow(ConfigError);
  });

  const malformed: Array<[string, RegExp]> = [
    ['truncated-header', /100 bytes is too short for a MAT v5 header/],
    ['truncated-plain', /offset 128: data element: element of type 14 claims 6200 bytes but only 2992 remain/],
    ['truncated-compressed', /offset \d+: data element: element of type 15 claims \d+ bytes but only \d+ remain/],
    ['truncated-zlib', /offset 128: compressed element is corrupt or truncated \(zlib: unexpected end of file\)/],
    ['compressed-garbage', /offset 128: compressed element is corrupt or truncated \(zlib: /],
    ['v73', /MATLAB v7\.3 \(HDF5\) MAT-file/],
    ['bad-endian', /offset 126: not a MAT v5 file \(endian indicator "XX"/],
    ['bad-version', /offset 124: unsupported MAT-file version 0x0300/],
    ['huge-dims', /offset \d+: variable 'X': dimensions \[65536, 32768, 1, 1\] need 2147483648 bytes of uint8, the data element holds 16/],
    ['huge-dims-compressed', /compressed element at offset 128, inflated byte \d+: variable 'X': dimensions \[65536, 32768, 1, 1\] need 2147483648 bytes/],
    ['huge-tag', /offset 128: data element: element of type 14 claims 2147483648 bytes but only 64 remain/],
    ['x-double', /variable 'X' is double; SVHN images are uint8/],
    ['x-dims', /variable 'X' has dimensions \[28, 28, 3, 2\]; SVHN cropped digits are \[32, 32, 3, N\]/],
    ['x-size-mismatch', /variable 'X': dimensions \[32, 32, 3, 2\] need 6144 bytes of uint8, the data element holds 3072/],
    ['label-range', /y\(2\) = 11; SVHN labels are integers 1–10/],
    ['label-zero', /y\(1\) = 0; SVHN labels/],
    ['label-fraction', /y\(2\) = 2\.5; SVHN labels/],
    ['count-mismatch', /variable 'y' has dimensions \[2, 1\]; expected \[3, 1\]/],
    ['missing-y', /no variable 'y' \(found: X\)/],
    ['complex-y', /variable 'y': complex arrays are not supported/],
    ['cell', /variable 'y': cell arrays are not supported/],
    ['bad-element-type', /offset 128: unsupported top-level data element type 9/],
    ['odd-dims-bytes', /dimensions: expected miINT32 with at least 2 values, found type 5 with 6 bytes/],
  ];
  it.each(malformed)('%s is a DataError naming the file and what is wrong', (name, message) => {
    expect(() => loadBad(name)).toThrow(DataError);
    expect(() => loadBad(name)).toThrow(message);
    expect(() => loadBad(name)).toThrow(/test_32x32\.mat/);
  });

  it('every malformed fixture is covered above', () => {
    const files = readdirSync(path.join(FIXTURES, 'bad')).map((f) => f.replace(/\.mat$/, ''));
    expect(files.sort()).toEqual(malformed.map(([n]) => n).sort());
  });
});

describe('MAT v5 reader under corruption (fuzz)', () => {
  const sources = ['test_32x32.mat', 'train_32x32.mat', 'extra_32x32.mat'].map((f) => new Uint8Array(readFileSync(path.join(good, f))));

  /** Reads `bytes` as the test split: only a DataError may come out, and nothing may hang or blow up. */
  function onlyDataErrors(bytes: Uint8Array): boolean {
    writeFileSync(path.join(dir, 'test_32x32.mat'), bytes);
    try {
      const ds = loadSvhn(dir);
      for (let i = 0; i < ds.length; i++) ds.rawImage(i);
      return true;
    } catch (err) {
      if (err instanceof DataError) return true;
      throw err;
    }
  }

  it('byte flips, truncations and huge 32-bit fields give only DataErrors', () => {
    const heapBefore = process.memoryUsage().arrayBuffers;
    fc.assert(
      fc.property(
        fc.nat(sources.length - 1),
        fc.array(fc.tuple(fc.nat(40_000), fc.integer({ min: 0, max: 255 })), { minLength: 0, maxLength: 6 }),
        fc.option(fc.tuple(fc.nat(40_000), fc.constantFrom(0x7fffffff, 0x80000000, 0xffffffff, 1 << 24)), { nil: undefined }),
        fc.option(fc.nat(40_000), { nil: undefined }),
        (which, flips, word, cut) => {
          const src = sources[which] as Uint8Array;
          const bytes = src.slice(0, cut === undefined ? src.length : cut % (src.length + 1));
          for (const [i, b] of flips) if (bytes.length > 0) bytes[i % bytes.length] = b;
          if (word !== undefined && bytes.length >= 4) {
            // A size or dimension field claiming 2^31 and more: 4-byte aligned like the format's fields.
            const at = (word[0] % (bytes.length >> 2)) * 4;
            new DataView(bytes.buffer).setUint32(at, word[1], true);
          }
          return onlyDataErrors(bytes);
        },
      ),
      { numRuns: 1500 },
    );
    // Nothing sized by a corrupt field was allocated (the largest fixture inflates to under 40 kB).
    expect(process.memoryUsage().arrayBuffers - heapBefore).toBeLessThan(64 * 1024 * 1024);
  });
});
