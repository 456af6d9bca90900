// The vocabulary of the shapes set: colours, shapes, backgrounds and which combinations are held out.

export const SHAPE_COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] as const;
export const SHAPE_KINDS = ['circle', 'square', 'triangle', 'star', 'cross'] as const;
export type ShapeColour = (typeof SHAPE_COLOURS)[number];
export type ShapeKind = (typeof SHAPE_KINDS)[number];

/** Base colour of each shape colour (jittered per image). */
export const COLOUR_RGB: Record<ShapeColour, readonly [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 225],
  yellow: [235, 215, 40],
  purple: [145, 60, 185],
  orange: [245, 140, 30],
};
export const BACKGROUNDS = [
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

export const COMBOS: readonly ShapeCombo[] = SHAPE_COLOURS.flatMap((colour, c) =>
  SHAPE_KINDS.map((shape, s) => ({ colour, shape, name: `${colour} ${shape}`, label: c * SHAPE_KINDS.length + s })),
);
const isHeldOut = (label: number) => HELD_OUT.some(([c, s]) => c * SHAPE_KINDS.length + s === label);
/** Combinations that appear in train/val/test. */
export const SEEN = COMBOS.filter((k) => !isHeldOut(k.label));
/** The held-out combinations: only in `heldOut` and `zeroShot`. */
export const UNSEEN = COMBOS.filter((k) => isHeldOut(k.label));
