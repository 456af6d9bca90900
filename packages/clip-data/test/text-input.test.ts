import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataError } from '@clip-ts/core';
import { BadImageError, loadCaptionCsv, loadFlickr8k, MAX_LINE_BYTES } from '@clip-ts/data';
import { tempDir, warnings, writeFlickr } from './helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

/** Replace line `line` (1-based) of captions.txt with `bytes`. */
function patchLine(file: string, line: number, bytes: Buffer): void {
  const lines = readFileSync(file).toString('latin1').split('\n');
  lines[line - 1] = bytes.toString('latin1');
  writeFileSync(file, Buffer.from(lines.join('\n'), 'latin1'));
}

describe('caption files are not changed silently (issue 15, item 8)', () => {
  it('bytes that are not UTF-8: a warning naming the file and lines; invalidUtf8 "error" refuses the file', async () => {
    const { captions } = await writeFlickr(dir);
    const file = path.join(dir, 'captions.txt');
    const name = [...captions.keys()][0] as string;
    // Latin-1 "café" (0xE9 alone is not UTF-8) on lines 3 and 5.
    patchLine(file, 3, Buffer.concat([Buffer.from(`${name},a caf`), Buffer.from([0xe9]), Buffer.from(' dog')]));
    patchLine(file, 5, Buffer.concat([Buffer.from(`${name},na`), Buffer.from([0xef, 0xbe]), Buffer.from('ve')]));
    const w = warnings();
    const f = loadFlickr8k(dir, { onWarning: w.sink });
    const utf8 = w.list.filter((m) => /UTF-8/.test(m));
    expect(utf8).toHaveLength(1);
    expect(utf8[0]).toContain(file);
    expect(utf8[0]).toMatch(/2 line\(s\).*lines 3, 5/);
    expect(f.train.captions(0)).toContain('a caf\uFFFD dog');
    expect(() => loadFlickr8k(dir, { onWarning: () => undefined, invalidUtf8: 'error' })).toThrow(DataError);
    expect(() => loadFlickr8k(dir, { onWarning: () => undefined, invalidUtf8: 'error' })).toThrow(/captions\.txt.*lines 3, 5/);
    // Valid multi-byte UTF-8 is not reported.
    patchLine(file, 3, Buffer.from(`${name},a café dog — ok`));
    patchLine(file, 5, Buffer.from(`${name},naïve`));
    const w2 = warnings();
    loadFlickr8k(dir, { onWarning: w2.sink, invalidUtf8: 'error' });
    expect(w2.list.filter((m) => /UTF-8/.test(m))).toEqual([]);
  });

  it('a huge single caption line is refused at once with the file and line, also in a caption CSV', async () => {
    const { captions } = await writeFlickr(dir);
    const file = path.join(dir, 'captions.txt');
    const name = [...captions.keys()][0] as string;
    patchLine(file, 4, Buffer.from(`${name},${'x'.repeat(10 * 1024 * 1024)}`));
    expect(() => loadFlickr8k(dir, { onWarning: () => undefined })).toThrow(DataError);
    expect(() => loadFlickr8k(dir, { onWarning: () => undefined })).toThrow(new RegExp(`captions\\.txt:4: line is \\d+ bytes long, over the limit of ${MAX_LINE_BYTES}`));
    const csv = path.join(dir, 'captions.csv');
    writeFileSync(csv, `image,caption\n${name},ok\n${name},${'y'.repeat(MAX_LINE_BYTES)}\n`);
    expect(() => loadCaptionCsv(csv, { imagesDir: 'images', onWarning: () => undefined })).toThrow(/captions\.csv:3: line is/);
    // At the limit is fine.
    writeFileSync(csv, `image,caption\n${name},${'y'.repeat(MAX_LINE_BYTES - name.length - 1)}\n`);
    expect(loadCaptionCsv(csv, { imagesDir: 'images', onWarning: () => undefined }).length).toBe(1);
  });
});

describe('error messages (item 9)', () => {
  it('"cannot decode image X:" is said once when the decoder already said it', () => {
    const inner = new DataError('cannot decode image a/b.jpg: Input buffer contains unsupported image format');
    expect(new BadImageError('a/b.jpg', { cause: inner }).message).toBe('cannot decode image a/b.jpg: Input buffer contains unsupported image format');
    expect(new BadImageError('a/b.jpg', { cause: new Error('truncated') }).message).toBe('cannot decode image a/b.jpg: truncated');
  });
});
