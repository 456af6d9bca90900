import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, DataError } from '@clip-ts/core';
import { BadImageError, loadCaptionCsv, loadCaptionCsvSplits, loadImageFolder } from '@clip-ts/data';
import { TestProcessor, tempDir, warnings, writeImage } from './helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

describe('loadImageFolder', () => {
  it('one class per subdirectory, sorted; images found recursively; hidden and non-image files ignored', async () => {
    await writeImage(path.join(dir, 'red_car', 'a.jpg'), [255, 0, 0]);
    await writeImage(path.join(dir, 'red_car', 'nested', 'b.PNG'), [255, 0, 0]);
    await writeImage(path.join(dir, 'apple', 'c.png'), [0, 255, 0]);
    writeFileSync(path.join(dir, 'apple', 'notes.txt'), 'x');
    writeFileSync(path.join(dir, 'apple', '.hidden.jpg'), 'x');
    mkdirSync(path.join(dir, 'empty_class'));
    const w = warnings();
    const ds = loadImageFolder(dir, { split: 'custom', onWarning: w.sink });
    expect(ds.classNames).toEqual(['apple', 'empty class', 'red car']);
    expect(ds.classDirs).toEqual(['apple', 'empty_class', 'red_car']);
    expect(ds.length).toBe(3);
    expect([0, 1, 2].map((i) => [ds.imageKey(i), ds.label(i)])).toEqual([
      ['apple/c.png', 0],
      ['red_car/a.jpg', 2],
      ['red_car/nested/b.PNG', 2],
    ]);
    expect(ds.split).toBe('custom');
    expect(w.list.join()).toMatch(/1 class director\(ies\) with no images: empty_class/);
    const img = await ds.loadImage(1, new TestProcessor());
    expect(img[0]).toBeGreaterThan(0.5);
  });

  it('symlinks out of the root, empty sets and corrupt images are errors', async () => {
    const outside = tempDir();
    try {
      await writeImage(path.join(outside.dir, 'x.jpg'), [0, 0, 0]);
      await writeImage(path.join(dir, 'cat', 'a.jpg'), [1, 1, 1]);
      symlinkSync(path.join(outside.dir, 'x.jpg'), path.join(dir, 'cat', 'evil.jpg'));
      expect(() => loadImageFolder(dir)).toThrow(/image folder: 'cat\/evil\.jpg' resolves to .* outside the dataset directory/);
    } finally {
      outside.cleanup();
    }
    const e = tempDir();
    try {
      mkdirSync(path.join(e.dir, 'cat'));
      expect(() => loadImageFolder(e.dir, { onWarning: () => undefined })).toThrow(/no images.*the split is empty/);
      writeFileSync(path.join(e.dir, 'cat', 'bad.jpg'), 'garbage');
      const ds = loadImageFolder(e.dir);
      await expect(ds.loadImage(0, new TestProcessor())).rejects.toThrow(BadImageError);
      await expect(ds.loadImage(0, new TestProcessor())).rejects.toThrow(/cat\/bad\.jpg/);
    } finally {
      e.cleanup();
    }
  });

  it('validates its options with zod', () => {
    expect(() => loadImageFolder(dir, { extensions: ['jpg'] })).toThrow(ConfigError);
  });
});

describe('loadCaptionCsv', () => {
  it('image,caption rows (quoted commas/quotes), several rows per image, header optional', async () => {
    await writeImage(path.join(dir, 'imgs', 'a.jpg'), [255, 0, 0]);
    await writeImage(path.join(dir, 'imgs', 'b.png'), [0, 0, 255]);
    writeFileSync(
      path.join(dir, 'captions.csv'),
      'image,caption\nimgs/a.jpg,"a red square, on ""white"""\nimgs/b.png,a blue square\nimgs/a.jpg,another caption\n',
    );
    const ds = loadCaptionCsv(dir);
    expect(ds.length).toBe(2);
    expect(ds.split).toBe('all');
    expect(ds.imageKey(0)).toBe('imgs/a.jpg');
    expect(ds.captions(0)).toEqual(['a red square, on "white"', 'another caption']);
    expect(ds.captions(1)).toEqual(['a blue square']);
    writeFileSync(path.join(dir, 'noheader.csv'), 'imgs/b.png,just one\n');
    expect(loadCaptionCsv(path.join(dir, 'noheader.csv')).captions(0)).toEqual(['just one']);
    expect((await ds.loadImage(1, new TestProcessor()))[2 * 64]).toBeGreaterThan(0.5);
  });

  it('reads Windows line endings and a byte-order mark', async () => {
    await writeImage(path.join(dir, 'a.jpg'), [255, 0, 0]);
    writeFileSync(path.join(dir, 'captions.csv'), '\uFEFFimage,caption\r\na.jpg,"first, quoted"\r\na.jpg,A dog "playing" , outside\r\n');
    expect(loadCaptionCsv(dir).captions(0)).toEqual(['first, quoted', 'A dog "playing" , outside']);
  });

  it('an optional split column selects rows', async () => {
    await writeImage(path.join(dir, 'a.jpg'), [255, 0, 0]);
    await writeImage(path.join(dir, 'b.jpg'), [0, 0, 255]);
    writeFileSync(path.join(dir, 'captions.csv'), 'split,image,caption\ntrain,a.jpg,red\ntest,b.jpg,blue\n');
    expect(loadCaptionCsv(dir, { split: 'test' }).imageKey(0)).toBe('b.jpg');
    const all = loadCaptionCsvSplits(dir);
    expect(Object.keys(all)).toEqual(['train', 'test']);
    expect(() => loadCaptionCsv(dir, { split: 'val' })).toThrow(/split 'val'.*the split is empty/);
  });

  it('bad names, missing files and malformed rows are errors naming file and line', async () => {
    await writeImage(path.join(dir, 'a.jpg'), [255, 0, 0]);
    const f = path.join(dir, 'captions.csv');
    writeFileSync(f, 'image,caption\na.jpg,ok\n../up.jpg,escape\n');
    expect(() => loadCaptionCsv(f)).toThrow(/captions\.csv:3: image name '\.\.\/up\.jpg' contains '\.\.'/);
    writeFileSync(f, 'image,caption\na.jpg,ok\nmissing.jpg,gone\n');
    expect(() => loadCaptionCsv(f)).toThrow(/1 image\(s\) with no file.*missing\.jpg \(.*captions\.csv:3\)/);
    const w = warnings();
    expect(loadCaptionCsv(f, { onMissing: 'skip', onWarning: w.sink }).length).toBe(1);
    expect(w.list.join()).toMatch(/skipped 1 image/);
    writeFileSync(f, 'image,caption\na.jpg,ok\na.jpg,\n');
    expect(() => loadCaptionCsv(f)).toThrow(DataError);
    expect(() => loadCaptionCsv(f)).toThrow(/captions\.csv:3: malformed caption row: empty caption/);
  });
});
