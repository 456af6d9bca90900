import { appendFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataError } from '@clip-ts/core';
import { BadImageError, loadFlickr8k } from '@clip-ts/data';
import { TestProcessor, tempDir, warnings, writeFlickr, writeImage, writeTruncatedJpeg } from './helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

const quiet = () => warnings().sink;

function expectDataError(fn: () => unknown, ...patterns: RegExp[]): DataError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DataError);
  for (const p of patterns) expect((caught as Error).message).toMatch(p);
  return caught as DataError;
}

describe('loadFlickr8k: layouts', () => {
  it('reads captions.txt (CSV with quoted commas and quotes), split files and images/', async () => {
    const { splits, captions } = await writeFlickr(dir);
    const f = loadFlickr8k(dir, { onWarning: quiet() });
    expect([f.train.length, f.val.length, f.test.length]).toEqual([6, 2, 2]);
    expect(f.train.split).toBe('train');
    expect(f.val.split).toBe('val');
    for (const split of ['train', 'val', 'test'] as const) {
      const ds = f[split];
      for (let i = 0; i < ds.length; i++) {
        expect(ds.imageKey(i)).toBe(splits[split][i]);
        expect(ds.captions(i)).toEqual(captions.get(ds.imageKey(i)));
      }
    }
    expect(f.train.captions(0)[1]).toBe('A red dog, running "fast" number 0');
    const img = await f.train.loadImage(0, new TestProcessor(8, 8));
    expect(img).toBeInstanceOf(Float32Array);
    expect(img.length).toBe(3 * 8 * 8);
    // A red image: the R plane is bright, the B plane dark (normalised with mean 0.5, std 0.5).
    expect(img[0]).toBeGreaterThan(0.5);
    expect(img[128]).toBeLessThan(-0.5);
  });

  it('reads the original Flickr8k.token.txt and Flicker8k_Dataset/', async () => {
    const { captions } = await writeFlickr(dir, { format: 'token', imagesDir: 'Flicker8k_Dataset' });
    const f = loadFlickr8k(dir, { onWarning: quiet() });
    expect(f.captionsFile.endsWith('Flickr8k.token.txt')).toBe(true);
    expect(f.imagesDir.endsWith('Flicker8k_Dataset')).toBe(true);
    expect(f.test.length).toBe(2);
    expect(f.train.captions(0)).toEqual(captions.get(f.train.imageKey(0)));
    expect(f.train.captions(0)[1]).toBe('A red dog, running "fast" number 0');
  });

  it('finds text files under Flickr8k_text/ and the Kaggle Images/ directory', async () => {
    await writeFlickr(dir, { format: 'token', imagesDir: 'Images' });
    mkdirSync(path.join(dir, 'Flickr8k_text'));
    for (const f of ['Flickr8k.token.txt', 'Flickr_8k.trainImages.txt', 'Flickr_8k.devImages.txt', 'Flickr_8k.testImages.txt']) {
      renameSync(path.join(dir, f), path.join(dir, 'Flickr8k_text', f));
    }
    const f = loadFlickr8k(dir, { onWarning: quiet() });
    expect(f.train.length).toBe(6);
  });

  it('gives the same fingerprint for the same contents and another for other contents', async () => {
    await writeFlickr(dir);
    const a = loadFlickr8k(dir, { onWarning: quiet() });
    const b = loadFlickr8k(dir, { onWarning: quiet() });
    expect(a.train.fingerprint()).toBe(b.train.fingerprint());
    expect(a.train.fingerprint()).not.toBe(a.test.fingerprint());
    appendFileSync(path.join(dir, 'captions.txt'), `${a.train.imageKey(0)},one more caption\n`);
    expect(loadFlickr8k(dir, { onWarning: quiet() }).train.fingerprint()).not.toBe(a.train.fingerprint());
  });

  it('without split files: an error naming them, or a seeded random split when asked', async () => {
    await writeFlickr(dir, { train: 8, val: 1, test: 1 });
    for (const f of ['Flickr_8k.trainImages.txt', 'Flickr_8k.devImages.txt', 'Flickr_8k.testImages.txt']) {
      renameSync(path.join(dir, f), path.join(dir, `${f}.bak`));
    }
    expectDataError(() => loadFlickr8k(dir), /Flickr_8k\.trainImages\.txt/, /randomSplit/);
    const a = loadFlickr8k(dir, { randomSplit: { seed: 3, val: 2, test: 2 } });
    const b = loadFlickr8k(dir, { randomSplit: { seed: 3, val: 2, test: 2 } });
    expect([a.train.length, a.val.length, a.test.length]).toEqual([6, 2, 2]);
    expect(a.test.imageKey(0)).toBe(b.test.imageKey(0));
    const all = [a.train, a.val, a.test].flatMap((d) => Array.from({ length: d.length }, (_, i) => d.imageKey(i)));
    expect(new Set(all).size).toBe(10);
  });

  it('rejects unknown options with a ConfigError naming the key', () => {
    expect(() => loadFlickr8k(dir, { onMising: 'skip' } as never)).toThrow(/onMising|unrecognized/i);
  });
});

describe('loadFlickr8k: bad input', () => {
  it('a malformed CSV line (unclosed quote) names the file and line', async () => {
    await writeFlickr(dir);
    const file = path.join(dir, 'captions.txt');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.splice(4, 0, '1000_abc0.jpg,"an unclosed quote');
    writeFileSync(file, lines.join('\n'));
    expectDataError(() => loadFlickr8k(dir), /captions\.txt:5: malformed caption row: a quoted field runs over/);
    // On the last line the quote is still open at the end of the file.
    lines.splice(4, 1);
    writeFileSync(file, `${lines.join('\n').trimEnd()}\n1000_abc0.jpg,"an unclosed quote\n`);
    expectDataError(() => loadFlickr8k(dir), /captions\.txt:52: malformed CSV: a quoted field is never closed/);
  });

  it('a CSV row without a caption names the file and line', async () => {
    await writeFlickr(dir);
    const file = path.join(dir, 'captions.txt');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.splice(3, 0, '1000_abc0.jpg');
    writeFileSync(file, lines.join('\n'));
    expectDataError(() => loadFlickr8k(dir), /captions\.txt:4: malformed caption row/);
  });

  it('a malformed token line names the file and line', async () => {
    await writeFlickr(dir, { format: 'token' });
    const file = path.join(dir, 'Flickr8k.token.txt');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.splice(7, 0, '1000_abc0.jpg a caption without the #N id');
    writeFileSync(file, lines.join('\n'));
    expectDataError(() => loadFlickr8k(dir), /Flickr8k\.token\.txt:8: malformed caption line/);
  });

  it("'../' and absolute image names are errors naming the file and line", async () => {
    await writeFlickr(dir);
    appendFileSync(path.join(dir, 'Flickr_8k.testImages.txt'), '../secret.jpg\n');
    expectDataError(() => loadFlickr8k(dir), /Flickr_8k\.testImages\.txt:3: image name '\.\.\/secret\.jpg' contains '\.\.'/);

    await writeFlickr(dir);
    appendFileSync(path.join(dir, 'captions.txt'), '/etc/passwd.jpg,a caption\n');
    expectDataError(() => loadFlickr8k(dir), /captions\.txt:52: image name '\/etc\/passwd\.jpg' is an absolute path/);
  });

  it('a symlink out of the root is an error naming the split file and line', async () => {
    await writeFlickr(dir);
    const outside = tempDir();
    try {
      await writeImage(path.join(outside.dir, 'x.jpg'), [1, 2, 3]);
      const name = '1000_abc0.jpg';
      const img = path.join(dir, 'images', name);
      renameSync(img, `${img}.orig`);
      symlinkSync(path.join(outside.dir, 'x.jpg'), img);
      expectDataError(() => loadFlickr8k(dir), /Flickr_8k\.trainImages\.txt:1: '1000_abc0\.jpg' resolves to .*outside the dataset directory/);
    } finally {
      outside.cleanup();
    }
  });

  it('split images with no caption or no file: an error listing them, or skipped and counted', async () => {
    await writeFlickr(dir);
    appendFileSync(path.join(dir, 'Flickr_8k.trainImages.txt'), 'no_caption.jpg\n');
    await writeImage(path.join(dir, 'images', 'no_caption.jpg'), [9, 9, 9]);
    appendFileSync(path.join(dir, 'captions.txt'), 'no_file.jpg,a caption for a missing file\n');
    appendFileSync(path.join(dir, 'Flickr_8k.trainImages.txt'), 'no_file.jpg\n');
    const err = expectDataError(() => loadFlickr8k(dir), /train split/, /1 image\(s\) with no caption/, /no_caption\.jpg \(.*trainImages\.txt:7\)/, /1 image\(s\) with no file/, /no_file\.jpg \(.*:8\)/);
    expect(err.message).toMatch(/onMissing/);
    const w = warnings();
    const f = loadFlickr8k(dir, { onMissing: 'skip', onWarning: w.sink });
    expect(f.train.length).toBe(6);
    expect(w.list.join('\n')).toMatch(/train split: skipped 2 image\(s\)/);
  });

  it('an empty split is an error', async () => {
    await writeFlickr(dir);
    writeFileSync(path.join(dir, 'Flickr_8k.devImages.txt'), '\n');
    expectDataError(() => loadFlickr8k(dir), /val split: the split is empty/);
  });

  it('reports duplicates: in a split, across splits, and duplicate caption rows', async () => {
    const { splits } = await writeFlickr(dir);
    appendFileSync(path.join(dir, 'Flickr_8k.trainImages.txt'), `${splits.train[0]}\n${splits.test[0]}\n`);
    appendFileSync(path.join(dir, 'captions.txt'), `${splits.train[1]},a green thing 1 caption 0 .\n`);
    const w = warnings();
    const f = loadFlickr8k(dir, { onWarning: w.sink });
    expect(f.train.length).toBe(7);
    expect(f.train.captions(1)).toHaveLength(5);
    const text = w.list.join('\n');
    expect(text).toMatch(/trainImages\.txt: 1 duplicate image name\(s\) ignored: 1000_abc0\.jpg \(line 7\)/);
    expect(text).toMatch(/1 image\(s\) listed in more than one split: 1008_abc8\.jpg \(train and test\)/);
    expect(text).toMatch(/captions\.txt: 1 duplicate caption row\(s\) ignored \(lines 52\)/);
  });

  it('a corrupt or truncated image rejects with a BadImageError naming it', async () => {
    const { splits } = await writeFlickr(dir);
    writeFileSync(path.join(dir, 'images', splits.train[0] as string), 'not a jpeg at all');
    await writeTruncatedJpeg(path.join(dir, 'images', splits.train[1] as string));
    const f = loadFlickr8k(dir, { onWarning: quiet() });
    const p = new TestProcessor();
    for (const i of [0, 1]) {
      const err = await f.train.loadImage(i, p).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadImageError);
      expect((err as BadImageError).message).toContain(splits.train[i] as string);
      expect((err as BadImageError).source).toContain(splits.train[i] as string);
    }
    await expect(f.train.loadImage(2, p)).resolves.toHaveLength(192);
  });
});
