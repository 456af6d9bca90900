import { DataError, Rng, hash32 } from '@clip-ts/core';
import type { ImageProcessor } from '@clip-ts/core';
import { processRawChecked } from '../errors.js';
import { checkIndex } from '../check-index.js';
import { hashStrings } from '../fingerprint.js';
import { parseOptions } from '../options.js';
import { ShapesOptionsSchema, ZeroShotOptionsSchema } from '../schemas.js';
import type { ShapesOptions, ZeroShotOptions } from '../schemas.js';
import type { ClassificationDataset, ImageCaptionDataset } from '../types.js';
import { captionsFor } from './grammar.js';
import { COMBOS, SEEN, SHAPE_COLOURS, SHAPE_KINDS, UNSEEN } from './palette.js';
import type { ShapeColour, ShapeCombo, ShapeKind } from './palette.js';
import { render } from './render.js';
import { sampleScene } from './scene.js';
import type { Scene, ShapeInstance } from './scene.js';

/**
 * A synthetic captioned set rendered on the fly (no download), deterministic by seed: one (sometimes
 * two) coloured shapes on a plain noisy background, five captions each. Some (colour, shape)
 * combinations never appear in train/val/test, so a model can be tested zero-shot on combinations it
 * never saw, while every colour word and every shape word is still seen in training.
 */

interface ShapeItem extends Scene {
  captions: string[];
}

/** One split of the shapes set, as `createShapes` builds it. */
export interface ShapesSplitOptions {
  /** Split name, used in image keys (`shapes/<split>/<index>`) and messages. */
  split: string;
  /** Number of images. */
  size: number;
  /** Seed of this split's images (image i is drawn from hash32(seed, i)). */
  seed: number;
  /** Image side in pixels. */
  imageSize: number;
  /** Colour–shape combinations the images are drawn from. */
  combos: readonly ShapeCombo[];
  /** Fraction of blurry images in [0, 1] (default 0). */
  blurry?: number;
  /** Fraction of two-shape images in [0, 1] (default 0). */
  twoShapes?: number;
}

/** One split of the shapes set: both a caption set and a classification set over all 30 colour–shape names. */
export class ShapesDataset implements ImageCaptionDataset, ClassificationDataset {
  readonly name = 'shapes';
  readonly onBadImage = 'error' as const;
  readonly classNames: readonly string[] = COMBOS.map((k) => k.name);
  readonly split: string;
  readonly imageSize: number;
  private readonly seed: number;
  private readonly items: ShapeItem[];
  private fp: string | undefined;

  constructor(options: ShapesSplitOptions) {
    const { split, size, seed, imageSize, combos } = options;
    if (size <= 0) throw new DataError(`shapes ${split} split is empty (size ${size})`);
    this.split = split;
    this.seed = seed;
    this.imageSize = imageSize;
    const scene = { imageSize, combos, blurry: options.blurry ?? 0, twoShapes: options.twoShapes ?? 0 };
    this.items = Array.from({ length: size }, (_, i) => {
      const sampled = sampleScene(new Rng(hash32(seed, i)), scene);
      return { ...sampled, captions: captionsFor(sampled) };
    });
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
  const make = (split: string, size: number, salt: number, combos: readonly ShapeCombo[], twoShapes: number) =>
    new ShapesDataset({ split, size, seed: splitSeed(salt), imageSize: o.imageSize, combos, blurry, twoShapes });
  return {
    train: make('train', o.trainSize, SALT.train, SEEN, o.twoShapes),
    val: make('val', o.valSize, SALT.val, SEEN, o.twoShapes),
    test: make('test', o.testSize, SALT.test, SEEN, o.twoShapes),
    heldOut: make('heldOut', o.heldOutSize ?? o.testSize, SALT.heldOut, UNSEEN, 0),
    zeroShot(zopts: ZeroShotOptions = {}) {
      const z = parseOptions(ZeroShotOptionsSchema, zopts, 'zeroShot');
      return new ShapesDataset({
        split: 'zeroShot',
        size: z.size ?? o.heldOutSize ?? o.testSize,
        seed: z.seed ?? splitSeed(SALT.zeroShot),
        imageSize: o.imageSize,
        combos: z.includeSeen ? COMBOS : UNSEEN,
        blurry: z.blurry === undefined ? blurry : fraction(z.blurry),
        twoShapes: 0,
      });
    },
    colours: SHAPE_COLOURS,
    shapes: SHAPE_KINDS,
    combos: COMBOS,
    heldOutCombos: UNSEEN,
    classNames: COMBOS.map((k) => k.name),
  };
}
