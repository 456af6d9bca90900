import type { Rng } from '@clip-ts/core';
import { BACKGROUNDS, COLOUR_RGB } from './palette.js';
import type { ShapeCombo } from './palette.js';

type Background = (typeof BACKGROUNDS)[number];

export interface ShapeInstance {
  combo: ShapeCombo;
  cx: number;
  cy: number;
  /** Half-extent in pixels. */
  r: number;
  angle: number;
  rgb: [number, number, number];
}

/** Everything needed to render and caption one image; sampled from a seeded Rng. */
export interface Scene {
  shapes: ShapeInstance[];
  bg: Background;
  bgRgb: [number, number, number];
  blurry: boolean;
  big: boolean;
  noiseSeed: number;
}

export interface SceneOptions {
  /** Image side in pixels. */
  imageSize: number;
  /** Combinations to draw from. */
  combos: readonly ShapeCombo[];
  /** Fraction of blurry scenes, in [0, 1]. */
  blurry: number;
  /** Fraction of two-shape scenes, in [0, 1]. */
  twoShapes: number;
}

/**
 * Sample one scene. The order of the `rng` draws is part of the data set's definition (the same seed must
 * give the same images forever), so it must not change.
 */
export function sampleScene(rng: Rng, options: SceneOptions): Scene {
  const { imageSize: S, combos, blurry: blurryFrac, twoShapes: twoFrac } = options;
  const two = twoFrac > 0 && rng.next() < twoFrac;
  const bg = BACKGROUNDS[rng.int(BACKGROUNDS.length)] as Background;
  const jitter = (v: number, d: number) => Math.max(0, Math.min(255, Math.round(v + (rng.next() * 2 - 1) * d)));
  const bgShift = (rng.next() * 2 - 1) * 14;
  const bgRgb = bg.rgb.map((v) => jitter(v + bgShift, 4)) as [number, number, number];
  const big = two ? false : rng.next() < 0.5;
  const place = (combo: ShapeCombo, r: number, xMin: number, xMax: number): ShapeInstance => {
    const m = r + 1;
    const lo = Math.max(xMin + m, m);
    const hi = Math.min(xMax - m, S - m);
    return {
      combo,
      r,
      cx: lo + rng.next() * Math.max(0, hi - lo),
      cy: m + rng.next() * Math.max(0, S - 2 * m),
      angle: combo.shape === 'circle' ? 0 : (rng.next() * 2 - 1) * (Math.PI / 10),
      rgb: COLOUR_RGB[combo.colour].map((v) => jitter(v, 14)) as [number, number, number],
    };
  };
  let shapes: ShapeInstance[];
  if (two) {
    const first = combos[rng.int(combos.length)] as ShapeCombo;
    let second = combos[rng.int(combos.length)] as ShapeCombo;
    while (second.label === first.label) second = combos[rng.int(combos.length)] as ShapeCombo;
    const r = S * (0.15 + rng.next() * 0.06);
    shapes = [place(first, r, 0, S / 2), place(second, S * (0.15 + rng.next() * 0.06), S / 2, S)];
  } else {
    const combo = combos[rng.int(combos.length)] as ShapeCombo;
    const r = S * (big ? 0.32 + rng.next() * 0.1 : 0.2 + rng.next() * 0.07);
    shapes = [place(combo, r, 0, S)];
  }
  const blurry = blurryFrac > 0 && rng.next() < blurryFrac;
  return { shapes, bg, bgRgb, blurry, big, noiseSeed: rng.nextSeed() };
}
