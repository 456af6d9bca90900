import { describe, expect, it } from 'vitest';
import { ConfigError, DataError } from '@clip-ts/core';
import { createShapes, ShapesDataset } from '@clip-ts/data';
import { TestProcessor } from './helpers.js';

const small = { seed: 7, trainSize: 300, valSize: 40, testSize: 40 };

function comboNames(ds: ShapesDataset): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < ds.length; i++) for (const c of ds.combos(i)) out.add(c.name);
  return out;
}

describe('createShapes', () => {
  it('is deterministic by seed: same seed, same images and captions; another seed, others', () => {
    const a = createShapes(small);
    const b = createShapes(small);
    const c = createShapes({ ...small, seed: 8 });
    for (const i of [0, 5, 299]) {
      expect(a.train.captions(i)).toEqual(b.train.captions(i));
      expect(Buffer.from(a.train.raw(i)).equals(Buffer.from(b.train.raw(i)))).toBe(true);
    }
    expect(a.train.fingerprint()).toBe(b.train.fingerprint());
    expect(a.train.fingerprint()).not.toBe(c.train.fingerprint());
    expect(a.train.fingerprint()).not.toBe(a.val.fingerprint());
    const differs = [0, 1, 2, 3, 4].some((i) => !Buffer.from(a.train.raw(i)).equals(Buffer.from(c.train.raw(i))));
    expect(differs).toBe(true);
  });

  it('holds some combinations out of training while every colour and shape word is seen', () => {
    const s = createShapes({ ...small, twoShapes: 0.3 });
    expect(s.colours).toHaveLength(6);
    expect(s.shapes).toHaveLength(5);
    expect(s.classNames).toHaveLength(30);
    const held = new Set(s.heldOutCombos.map((k) => k.name));
    expect(held.size).toBe(6);
    // One held-out shape per colour (Latin square), and every shape held out at least once.
    expect(new Set(s.heldOutCombos.map((k) => k.colour)).size).toBe(6);
    expect(new Set(s.heldOutCombos.map((k) => k.shape)).size).toBe(5);
    for (const split of [s.train, s.val, s.test]) {
      for (const name of comboNames(split)) expect(held.has(name)).toBe(false);
    }
    const seenWords = new Set([...comboNames(s.train)].flatMap((n) => n.split(' ')));
    for (const w of [...s.colours, ...s.shapes]) expect(seenWords.has(w)).toBe(true);
    expect(comboNames(s.train).size).toBe(24);
    for (const name of comboNames(s.heldOut)) expect(held.has(name)).toBe(true);
    // No held-out combination appears in any caption of training.
    for (let i = 0; i < s.train.length; i++) {
      for (const cap of s.train.captions(i)) for (const h of held) expect(cap.includes(h)).toBe(false);
    }
  });

  it('gives five differently phrased captions naming the colour and the shape', () => {
    const s = createShapes(small);
    for (let i = 0; i < 50; i++) {
      const caps = s.train.captions(i);
      expect(caps).toHaveLength(5);
      expect(new Set(caps).size).toBe(5);
      const name = s.train.combos(i)[0]?.name as string;
      for (const c of caps) expect(c).toContain(name);
    }
    expect(s.train.captions(0)[1]).toMatch(/^a photo of an? /);
    expect(s.train.captions(0)[2]).toMatch(/^a (small|large) \w+ \w+ on an? (white|gray|black) background$/);
    // "an orange ...", not "a orange ...".
    for (let i = 0; i < s.train.length; i++) for (const c of s.train.captions(i)) expect(c).not.toMatch(/\ba orange\b/);
  });

  it('renders the named colour where the shape is', () => {
    const s = createShapes({ seed: 3, trainSize: 60, valSize: 1, testSize: 1, imageSize: 48 });
    const rgbOf: Record<string, [number, number, number]> = {
      red: [220, 40, 40],
      green: [40, 170, 60],
      blue: [40, 80, 225],
      yellow: [235, 215, 40],
      purple: [145, 60, 185],
      orange: [245, 140, 30],
    };
    for (let i = 0; i < 60; i++) {
      const px = s.train.raw(i);
      expect(px.length).toBe(48 * 48 * 3);
      const want = rgbOf[s.train.combos(i)[0]?.colour as string] as [number, number, number];
      // Count pixels close to the named colour: a large or small shape covers a good share of the image.
      let close = 0;
      for (let p = 0; p < 48 * 48; p++) {
        const d = Math.abs((px[p * 3] as number) - want[0]) + Math.abs((px[p * 3 + 1] as number) - want[1]) + Math.abs((px[p * 3 + 2] as number) - want[2]);
        if (d < 70) close++;
      }
      expect(close).toBeGreaterThan(48 * 48 * 0.05);
    }
  });

  it('blurry variant: captions say so and the images are smoother', () => {
    const s = createShapes({ ...small, blurry: 1 });
    const sharpSet = createShapes({ ...small, blurry: false });
    expect(s.train.isBlurry(0)).toBe(true);
    expect(s.train.captions(0)).toContain(`a blurry photo of ${/^[aeiou]/.test(s.train.combos(0)[0]?.name ?? '') ? 'an' : 'a'} ${s.train.combos(0)[0]?.name}`);
    expect(s.train.captions(0).some((c) => c.startsWith('a fuzzy photo of'))).toBe(true);
    const tv = (px: Uint8Array, S: number) => {
      let t = 0;
      for (let y = 0; y < S; y++) for (let x = 1; x < S; x++) t += Math.abs((px[(y * S + x) * 3] as number) - (px[(y * S + x - 1) * 3] as number));
      return t;
    };
    let blurTv = 0;
    let sharpTv = 0;
    for (let i = 0; i < 20; i++) {
      blurTv += tv(s.train.raw(i), 64);
      sharpTv += tv(sharpSet.train.raw(i), 64);
    }
    expect(blurTv).toBeLessThan(sharpTv * 0.7);
    const half = createShapes({ ...small, blurry: true });
    let n = 0;
    for (let i = 0; i < half.train.length; i++) if (half.train.isBlurry(i)) n++;
    expect(n / half.train.length).toBeGreaterThan(0.35);
    expect(n / half.train.length).toBeLessThan(0.65);
  });

  it('zeroShot: all colour–shape class names, held-out images, labels that match', async () => {
    const s = createShapes(small);
    const z = s.zeroShot({ size: 90 });
    expect(z.length).toBe(90);
    expect(z.classNames).toEqual(s.classNames);
    expect(z.classNames).toContain('red circle');
    const held = new Set(s.heldOutCombos.map((k) => k.label));
    for (let i = 0; i < z.length; i++) {
      expect(held.has(z.label(i))).toBe(true);
      expect(z.classNames[z.label(i)]).toBe(z.combos(i)[0]?.name);
    }
    expect(new Set(Array.from({ length: 90 }, (_, i) => z.label(i))).size).toBe(6);
    const withSeen = s.zeroShot({ size: 300, includeSeen: true });
    expect(new Set(Array.from({ length: 300 }, (_, i) => withSeen.label(i))).size).toBe(30);
    const img = await z.loadImage(0, new TestProcessor(32, 32));
    expect(img.length).toBe(3 * 32 * 32);
    // Its images are not those of the heldOut split.
    expect(z.fingerprint()).not.toBe(s.heldOut.fingerprint());
  });

  it('validates options', () => {
    expect(() => createShapes({ imageSize: 4 })).toThrow(ConfigError);
    expect(() => createShapes({ trainSize: 0 })).toThrow(ConfigError);
    expect(() => createShapes({ seed: -1 })).toThrow(ConfigError);
    expect(DataError).toBeDefined();
  });
});
