import { describe, expect, it } from 'vitest';
import { DataError } from '@clip-ts/core';
import { decodeBrowserImage, describeBrowserImage, rgbaToRgb } from '../src/index.js';

// The canvas paths run in Chromium (examples/web/test/browser.test.ts); here: the parts plain JS decides.
describe('decodeBrowserImage (outside a browser)', () => {
  const rgba = { data: Uint8ClampedArray.from([10, 20, 30, 255, 40, 50, 60, 0]), width: 2, height: 1 };

  it('ImageData → RGB with alpha dropped and colours kept as stored', async () => {
    const out = await decodeBrowserImage(rgba);
    expect(out).toEqual({ data: Uint8Array.from([10, 20, 30, 40, 50, 60]), width: 2, height: 1, channels: 3 });
  });

  it('rejects ImageData whose size does not match its bytes', () => {
    expect(() => rgbaToRgb({ data: new Uint8ClampedArray(7), width: 2, height: 1 })).toThrow(DataError);
  });

  it('a Blob without createImageBitmap is a DataError naming the file', async () => {
    const file = new File([new Uint8Array([1, 2, 3])], 'holiday.png', { type: 'image/png' });
    expect(describeBrowserImage(file)).toBe("'holiday.png'");
    await expect(decodeBrowserImage(file)).rejects.toThrow(/holiday\.png.*createImageBitmap/);
  });

  it('an <img> that has not loaded is a DataError naming its URL', async () => {
    const img = { width: 0, height: 0, naturalWidth: 0, naturalHeight: 0, complete: false, currentSrc: 'https://x/cat.jpg' };
    await expect(decodeBrowserImage(img)).rejects.toThrow(/cat\.jpg.*not finished loading/);
  });
});
