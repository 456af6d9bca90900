import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createShapes, type ShapesDataset } from '@clip-ts/data';

/**
 * Pins the shapes renderer and caption grammar to hashes recorded before the module was split into
 * renderer / grammar / dataset: a refactor that changes a single pixel or word fails here (the demo's
 * results table depends on these exact images).
 */
function digest(ds: ShapesDataset): { images: string; captions: string } {
  const img = createHash('sha256');
  const cap = createHash('sha256');
  for (let i = 0; i < ds.length; i++) {
    img.update(ds.raw(i));
    for (const c of ds.captions(i)) cap.update(`${c}\n`);
  }
  return { images: img.digest('hex').slice(0, 32), captions: cap.digest('hex').slice(0, 32) };
}

describe('shapes set is byte-identical to the recorded renderer', () => {
  it('single and two-shape, sharp and blurry items, every split', () => {
    const s = createShapes({ seed: 7, imageSize: 24, trainSize: 12, valSize: 4, testSize: 4, heldOutSize: 5, blurry: 0.5, twoShapes: 0.5 });
    // The sample must exercise every branch the hashes are meant to cover.
    const kinds = new Set(Array.from({ length: s.train.length }, (_, i) => `${s.train.isBlurry(i)}/${s.train.combos(i).length}`));
    expect(kinds).toEqual(new Set(['true/1', 'true/2', 'false/1', 'false/2']));
    const got = Object.fromEntries(
      Object.entries({ train: s.train, val: s.val, test: s.test, heldOut: s.heldOut, zeroShot: s.zeroShot({ includeSeen: true, size: 6 }) }).map(
        ([k, ds]) => [k, digest(ds)],
      ),
    );
    expect(got).toEqual({
      train: { images: 'b8a92c1e30beb306ebbc29e2e1393701', captions: '32996fa218163600bb4cbb65df482283' },
      val: { images: 'b8a2af140c8fd21d69f426092284e9cd', captions: '661d79007703d607ba65b7b0f1944eff' },
      test: { images: 'd5d431059af1ce1db9fa73aba690fc66', captions: 'd095945dec8369dbc96765941a3c9b4f' },
      heldOut: { images: '1924621f8a34865fd53753adb9057434', captions: '56b4dd697f8dba169c1328d62fd80985' },
      zeroShot: { images: 'cc0682ce5d7e1b91151c718f014d6569', captions: '91be260fa4c0ab996d90c1ef32c9d373' },
    });
  });

  it('the demo set (seed 42, 32 px): first images of train and zeroShot', () => {
    const s = createShapes({ seed: 42, imageSize: 32, trainSize: 16, valSize: 1, testSize: 1, heldOutSize: 16 });
    const got = { train: digest(s.train), zeroShot: digest(s.zeroShot()) };
    expect(got).toEqual({
      train: { images: 'f2aa1928ec90cc64dc3146e62ee0d07a', captions: '4d0d93c8a92f856be22801d2701c9296' },
      zeroShot: { images: 'e380517d17acd1d5da715b566163e15a', captions: 'da56d0ab364631a4d76b132ea64d8b3f' },
    });
  });
});
