import { describe, expect, it } from 'vitest';
import { DataError, ValueError } from '@clip-ts/core';
import { allCaptions, createShapes, lengthStats, splitStats, subset } from '@clip-ts/data';
import { FakeTokenizer, TestProcessor } from './helpers.js';

const s = createShapes({ seed: 2, trainSize: 30, valSize: 4, testSize: 4 });

describe('splitStats', () => {
  it('counts images, captions and classes; token lengths with a tokenizer', () => {
    const st = splitStats(s.train, { tokenizer: new FakeTokenizer(), maxLength: 8 });
    expect(st.split).toBe('train');
    expect(st.images).toBe(30);
    expect(st.captions).toBe(150);
    expect(st.classes).toBe(30);
    expect(st.classCounts?.reduce((a, b) => a + b, 0)).toBe(30);
    const lens = new FakeTokenizer().tokenLengths(allCaptions(s.train).texts);
    expect(st.tokenLengths?.min).toBe(Math.min(...lens));
    expect(st.tokenLengths?.max).toBe(Math.max(...lens));
    expect(st.tokenLengths?.overMaxLength).toBe(lens.filter((l) => l > 8).length);
    expect(splitStats(s.train).tokenLengths).toBeUndefined();
  });

  it('lengthStats: min, max, mean, median, p90 (numpy linear)', () => {
    const st = lengthStats([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 8);
    expect(st).toMatchObject({ min: 1, max: 10, mean: 5.5, median: 5.5, maxLength: 8, overMaxLength: 2 });
    expect(st.p90).toBeCloseTo(9.1, 10);
    expect(() => lengthStats([])).toThrow(ValueError);
  });

  it('allCaptions flattens captions with their image index', () => {
    const { texts, imageIndex } = allCaptions(s.val);
    expect(texts).toHaveLength(20);
    expect(imageIndex.slice(0, 6)).toEqual([0, 0, 0, 0, 0, 1]);
    expect(texts[5]).toBe(s.val.captions(1)[0]);
  });
});

describe('subset', () => {
  it('is a view keeping captions, labels and images of the chosen indices', async () => {
    const v = subset(s.train, [4, 2]);
    expect(v.length).toBe(2);
    expect(v.imageKey(0)).toBe(s.train.imageKey(4));
    expect(v.captions(1)).toEqual(s.train.captions(2));
    expect(v.label(0)).toBe(s.train.label(4));
    expect(v.classNames).toEqual(s.classNames);
    const p = new TestProcessor();
    expect(await v.loadImage(1, p)).toEqual(await s.train.loadImage(2, p));
    expect(v.fingerprint()).not.toBe(s.train.fingerprint());
    expect(subset(s.train, [4, 2]).fingerprint()).toBe(v.fingerprint());
    expect(() => subset(s.train, [])).toThrow(DataError);
    expect(() => subset(s.train, [30])).toThrow(ValueError);
    expect(() => v.imageKey(2)).toThrow(ValueError);
  });
});
