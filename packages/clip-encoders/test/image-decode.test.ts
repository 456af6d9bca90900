import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '@clip-ts/core';
import { ClipImageProcessor } from '@clip-ts/encoders/node';

const dir = mkdtempSync(path.join(tmpdir(), 'clip-decode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ClipImageProcessor.decodeFile / decodeBuffer (what training augmentation crops from)', () => {
  it('decodes at the stored size, without resizing, and processFile still resizes the same pixels', async () => {
    const w = 7;
    const h = 5;
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i % 4 === 3 ? 128 : (i * 29) % 256));
    const file = path.join(dir, 'a.png');
    await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toFile(file);
    const drop = new ClipImageProcessor({ height: 4, width: 4 });
    const img = await drop.decodeFile(file);
    expect([img.width, img.height, img.data.length]).toEqual([w, h, w * h * 3]);
    // alpha 'drop' keeps the stored colour values.
    expect(Array.from(img.data)).toEqual(Array.from(rgba).filter((_, i) => i % 4 !== 3));
    // The Pillow-exact resizer takes the decoded pixels as they are (the default libvips path resizes while decoding).
    const pillow = new ClipImageProcessor({ height: 4, width: 4, resizer: 'pillow' });
    expect(Array.from(await pillow.processFile(file))).toEqual(Array.from(await pillow.processRaw(img.data, w, h, 3, 'a')));
    const white = await new ClipImageProcessor({ alpha: 'white' }).decodeBuffer(await sharp(file).toBuffer(), 'a');
    expect(Array.from(white.data)).not.toEqual(Array.from(img.data));
    await expect(drop.decodeFile(path.join(dir, 'missing.png'))).rejects.toThrow(DataError);
    await expect(drop.decodeBuffer(new Uint8Array([1, 2, 3]), 'junk')).rejects.toThrow(/junk/);
  });
});
