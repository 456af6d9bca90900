import { DataError, Rng, hash32 } from '@clip-ts/core';
import type { ImageProcessor } from '@clip-ts/core';
import { processRawChecked } from './errors.js';
import { ShapesOptionsSchema, ZeroShotOptionsSchema } from './schemas.js';
import type { ShapesOptions, ZeroShotOptions } from './schemas.js';
import type { ClassificationDataset, ImageCaptionDataset } from './types.js';
import { checkIndex, hashStrings, parseOptions } from './util.js';

/**
 * A synthetic captioned set rendered on the fly (no download), deterministic by seed: one (sometimes
 * two) coloured shapes on a plain noisy background, five captions each. Some (colour, shape)
 * combinations never appear in train/val/test, so a model can be tested zero-shot on combinations it
 * never saw, while every colour word and every shape word is still seen in training.
 */

export const SHAPE_COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] as const;
export const SHAPE_KINDS = ['circle', 'square', 'triangle', 'star', 'cross'] as const;
export type ShapeColour = (typeof SHAPE_COLOURS)[number];
export type ShapeKind = (typeof SHAPE_KINDS)[number];

const RGB: Record<ShapeColour, readonly [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 225],
  yellow: [235, 215, 40],
  purple: [145, 60, 185],
  orange: [245, 140, 30],
};
const BACKGROUNDS = [
  { name: 'white', rgb: [240, 240, 240] },
  { name: 'gray', rgb: [128, 128, 128] },
  { name: 'black', rgb: [22, 22, 22] },
] as const;

/** Latin-square hold-out: colour i never appears with shape (2i+1) mod 5 in training. */
const HELD_OUT: ReadonlyArray<readonly [number, number]> = SHAPE_COLOURS.map((_, c) => [c, (2 * c + 1) % SHAPE_KINDS.length] as const);

export interface ShapeCombo {
  colour: ShapeColour;
  shape: ShapeKind;
  /** "red circle": also the class name. */
  name: string;
  /** Index in the class list (colour-major). */
  label: number;
}

const COMBOS: readonly ShapeCombo[] = SHAPE_COLOURS.flatMap((colour, c) =>
  SHAPE_KINDS.map((shape, s) => ({ colour, shape, name: `${colour} ${shape}`, label: c * SHAPE_KINDS.length + s })),
);
const isHeldOut = (label: number) => HELD_OUT.some(([c, s]) => c * SHAPE_KINDS.length + s === label);
const SEEN = COMBOS.filter((k) => !isHeldOut(k.label));
const UNSEEN = COMBOS.filter((k) => isHeldOut(k.label));

interface ShapeInstance {
  combo: ShapeCombo;
  cx: number;
  cy: number;
  /** Half-extent in pixels. */
  r: number;
  angle: number;
  rgb: [number, number, number];
}

interface ShapeItem {
  shapes: ShapeInstance[];
  bg: (typeof BACKGROUNDS)[number];
  bgRgb: [number, number, number];
  blurry: boolean;
  big: boolean;
  noiseSeed: number;
  captions: string[];
}

const an = (word: string) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

function captionsFor(item: Omit<ShapeItem, 'captions'>): string[] {
  const [a, b] = item.shapes as [ShapeInstance, ShapeInstance | undefined];
  const bg = item.bg.name;
  if (b) {
    const one = a.combo.name;
    const two = b.combo.name;
    const pre = item.blurry ? 'a blurry photo of' : 'a photo of';
    return [
      `${an(one)} and ${an(two)}`,
      `${pre} ${an(one)} and ${an(two)}`,
      `${an(two)} and ${an(one)}`,
      `${an(one)} on the left and ${an(two)} on the right`,
      `${item.blurry ? 'blurry ' : ''}two shapes, ${an(one)} and ${an(two)}, on ${an(bg)} background`,
    ];
  }
  const name = a.combo.name;
  const size = item.big ? 'large' : 'small';
  if (item.blurry) {
    return [
      `a blurry ${name}`,
      `a blurry photo of ${an(name)}`,
      `a fuzzy photo of a ${size} ${name} on ${an(bg)} background`,
      `a low resolution picture of a ${size} ${name}`,
      `there is a blurry ${name} in the image`,
    ];
  }
  return [
    an(name),
    `a photo of ${an(name)}`,
    `a ${size} ${name} on ${an(bg)} background`,
    `a picture of a ${size} ${name}`,
    `there is ${an(name)} in the image`,
  ];
}

function makeItem(rng: Rng, S: number, combos: readonly ShapeCombo[], blurryFrac: number, twoFrac: number): ShapeItem {
  const two = twoFrac > 0 && rng.next() < twoFrac;
  const bg = BACKGROUNDS[rng.int(BACKGROUNDS.length)] as ShapeItem['bg'];
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
      rgb: RGB[combo.colour].map((v) => jitter(v, 14)) as [number, number, number],
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
  const partial = { shapes, bg, bgRgb, blurry, big, noiseSeed: rng.nextSeed() };
  return { ...partial, captions: captionsFor(partial) };
}

// Unit shapes in local coordinates (y down), half-extent 1, as flat [x0, y0, x1, y1, ...] polygons.
const STAR = Float64Array.from(
  Array.from({ length: 10 }, (_, k) => {
    const a = -Math.PI / 2 + (k * Math.PI) / 5;
    const rad = k % 2 === 0 ? 1 : 0.45;
    return [rad * Math.cos(a), rad * Math.sin(a)];
  }).flat(),
);
const TRIANGLE = Float64Array.from([0, -1, 0.93, 0.75, -0.93, 0.75]);

function inPolygon(poly: Float64Array, x: number, y: number): boolean {
  let inside = false;
  const n = poly.length;
  for (let i = 0, j = n - 2; i < n; j = i, i += 2) {
    const xi = poly[i] as number;
    const yi = poly[i + 1] as number;
    const xj = poly[j] as number;
    const yj = poly[j + 1] as number;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function insideUnit(shape: ShapeKind, x: number, y: number): boolean {
  switch (shape) {
    case 'circle':
      return x * x + y * y <= 1;
    case 'square':
      return Math.abs(x) <= 0.85 && Math.abs(y) <= 0.85;
    case 'triangle':
      return inPolygon(TRIANGLE, x, y);
    case 'star':
      return inPolygon(STAR, x, y);
    case 'cross':
      return (Math.abs(x) <= 0.32 && Math.abs(y) <= 0.95) || (Math.abs(y) <= 0.32 && Math.abs(x) <= 0.95);
  }
}

/** Render an item to interleaved RGB uint8 (S×S×3): 2×2 supersampled edges, light noise, optional blur. */
function render(item: ShapeItem, S: number): Uint8Array {
  const out = new Float32Array(S * S * 3);
  const noise = new Rng(item.noiseSeed);
  const [br, bg, bb] = item.bgRgb;
  for (let p = 0; p < S * S; p++) {
    const n = (noise.next() * 2 - 1) * 6;
    out[p * 3] = br + n;
    out[p * 3 + 1] = bg + n;
    out[p * 3 + 2] = bb + n;
  }
  for (const sh of item.shapes) {
    const cos = Math.cos(sh.angle);
    const sin = Math.sin(sh.angle);
    const inv = 1 / sh.r;
    const kind = sh.combo.shape;
    const [sr, sg, sb] = sh.rgb;
    const x0 = Math.max(0, Math.floor(sh.cx - sh.r * 1.1));
    const x1 = Math.min(S - 1, Math.ceil(sh.cx + sh.r * 1.1));
    const y0 = Math.max(0, Math.floor(sh.cy - sh.r * 1.1));
    const y1 = Math.min(S - 1, Math.ceil(sh.cy + sh.r * 1.1));
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        let cover = 0;
        for (let k = 0; k < 4; k++) {
          const dx = (px + 0.25 + 0.5 * (k & 1) - sh.cx) * inv;
          const dy = (py + 0.25 + 0.5 * (k >> 1) - sh.cy) * inv;
          if (insideUnit(kind, cos * dx + sin * dy, -sin * dx + cos * dy)) cover++;
        }
        if (cover === 0) continue;
        const a = cover / 4;
        const o = (py * S + px) * 3;
        out[o] = (1 - a) * (out[o] as number) + a * sr;
        out[o + 1] = (1 - a) * (out[o + 1] as number) + a * sg;
        out[o + 2] = (1 - a) * (out[o + 2] as number) + a * sb;
      }
    }
  }
  if (item.blurry) {
    const radius = Math.max(1, Math.round(S / 20));
    boxBlur(out, S, radius);
    boxBlur(out, S, radius);
  }
  return Uint8Array.from(out, (v) => Math.max(0, Math.min(255, Math.round(v))));
}

/** Separable box blur in place with running sums (edges clamped); twice approximates a Gaussian. */
function boxBlur(img: Float32Array, S: number, r: number): void {
  const line = new Float32Array(S);
  const w = 1 / (2 * r + 1);
  // stride between neighbours along the line, and between lines
  for (const [step, lineStride] of [
    [3, S * 3],
    [S * 3, 3],
  ] as const) {
    for (let l = 0; l < S; l++) {
      for (let c = 0; c < 3; c++) {
        const base = l * lineStride + c;
        for (let i = 0; i < S; i++) line[i] = img[base + i * step] as number;
        let sum = 0;
        for (let k = -r; k <= r; k++) sum += line[Math.max(0, Math.min(S - 1, k))] as number;
        for (let i = 0; i < S; i++) {
          img[base + i * step] = sum * w;
          sum += (line[Math.min(S - 1, i + r + 1)] as number) - (line[Math.max(0, i - r)] as number);
        }
      }
    }
  }
}

/** One split of the shapes set: both a caption set and a classification set over all 30 colour–shape names. */
export class ShapesDataset implements ImageCaptionDataset, ClassificationDataset {
  readonly name = 'shapes';
  readonly onBadImage = 'error' as const;
  readonly classNames: readonly string[] = COMBOS.map((k) => k.name);
  private readonly items: ShapeItem[];
  private fp: string | undefined;

  constructor(
    readonly split: string,
    length: number,
    private readonly seed: number,
    readonly imageSize: number,
    combos: readonly ShapeCombo[],
    blurry: number,
    twoShapes: number,
  ) {
    if (length <= 0) throw new DataError(`shapes ${split} split is empty (size ${length})`);
    this.items = Array.from({ length }, (_, i) => makeItem(new Rng(hash32(seed, i)), imageSize, combos, blurry, twoShapes));
  }

  get length(): number {
    return this.items.length;
  }

  private item(index: number): ShapeItem {
    checkIndex(index, this.items.length, `shapes/${this.split}`);
    return this.items[index] as ShapeItem;
  }

  imageKey(index: number): string {
    checkIndex(index, this.items.length, `shapes/${this.split}`);
    return `shapes/${this.split}/${index}`;
  }

  captions(index: number): readonly string[] {
    return this.item(index).captions;
  }

  /** Label of the (first) shape: index of its "colour shape" name in classNames. */
  label(index: number): number {
    return (this.item(index).shapes[0] as ShapeInstance).combo.label;
  }

  /** Colour–shape combinations in the image, left to right. */
  combos(index: number): ShapeCombo[] {
    return this.item(index).shapes.map((s) => s.combo);
  }

  isBlurry(index: number): boolean {
    return this.item(index).blurry;
  }

  /** The rendered image as interleaved RGB uint8, imageSize×imageSize×3 (e.g. to save a PNG). */
  raw(index: number): Uint8Array {
    return render(this.item(index), this.imageSize);
  }

  loadImage(index: number, processor: ImageProcessor): Promise<Float32Array> {
    return processRawChecked(processor, this.raw(index), this.imageSize, this.imageSize, this.imageKey(index));
  }

  fingerprint(): string {
    this.fp ??= hashStrings(['shapes-v1', this.split, String(this.seed), String(this.imageSize), ...this.items.flatMap((i) => i.captions)]);
    return this.fp;
  }
}

export interface Shapes {
  train: ShapesDataset;
  val: ShapesDataset;
  test: ShapesDataset;
  /** Images of held-out combinations only (single shapes). */
  heldOut: ShapesDataset;
  /** A classification set over ALL colour–shape names whose images are held-out combinations (unless includeSeen). */
  zeroShot(options?: ZeroShotOptions): ShapesDataset;
  colours: readonly ShapeColour[];
  shapes: readonly ShapeKind[];
  /** Every colour–shape combination, colour-major; `label` indexes classNames. */
  combos: readonly ShapeCombo[];
  heldOutCombos: readonly ShapeCombo[];
  classNames: readonly string[];
}

const SALT = { train: 1, val: 2, test: 3, heldOut: 4, zeroShot: 5 } as const;
const fraction = (b: boolean | number) => (b === true ? 0.5 : b === false ? 0 : b);

/** Build the shapes set (see the module comment and docs/data.md). Deterministic in `options`. */
export function createShapes(options: ShapesOptions = {}): Shapes {
  const o = parseOptions(ShapesOptionsSchema, options, 'createShapes');
  const blurry = fraction(o.blurry);
  const splitSeed = (salt: number) => hash32(o.seed, salt);
  const make = (split: string, n: number, salt: number, combos: readonly ShapeCombo[], two: number) =>
    new ShapesDataset(split, n, splitSeed(salt), o.imageSize, combos, blurry, two);
  return {
    train: make('train', o.trainSize, SALT.train, SEEN, o.twoShapes),
    val: make('val', o.valSize, SALT.val, SEEN, o.twoShapes),
    test: make('test', o.testSize, SALT.test, SEEN, o.twoShapes),
    heldOut: make('heldOut', o.heldOutSize ?? o.testSize, SALT.heldOut, UNSEEN, 0),
    zeroShot(zopts: ZeroShotOptions = {}) {
      const z = parseOptions(ZeroShotOptionsSchema, zopts, 'zeroShot');
      return new ShapesDataset(
        'zeroShot',
        z.size ?? o.heldOutSize ?? o.testSize,
        z.seed ?? splitSeed(SALT.zeroShot),
        o.imageSize,
        z.includeSeen ? COMBOS : UNSEEN,
        z.blurry === undefined ? blurry : fraction(z.blurry),
        0,
      );
    },
    colours: SHAPE_COLOURS,
    shapes: SHAPE_KINDS,
    combos: COMBOS,
    heldOutCombos: UNSEEN,
    classNames: COMBOS.map((k) => k.name),
  };
}
