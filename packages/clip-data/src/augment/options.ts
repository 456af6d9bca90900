import { z } from 'zod';

/**
 * Training augmentation options (open_clip / torchvision semantics). Every part is off unless given.
 * Defaults inside a part are open_clip's: RandomResizedCrop scale [0.9, 1] and torchvision's ratio
 * [3/4, 4/3].
 */
const range = (lo: number, what: string) =>
  z
    .tuple([z.number().min(lo), z.number().min(lo)])
    .refine(([a, b]) => a <= b, `${what}: [min, max] with min ≤ max`);

/** torchvision ColorJitter: x → factors in [max(0, 1 − x), 1 + x]; [min, max] gives the range itself. */
const jitterAmount = z.union([z.number().min(0), range(0, 'factor range')]);

export const AugmentOptionsSchema = z.strictObject({
  /** Crop a random box (area fraction `scale`, aspect ratio `ratio`, log-uniform) and resize it to the model's size. */
  randomResizedCrop: z
    .strictObject({
      scale: range(0, 'scale')
        .refine(([, b]) => b <= 1 && b > 0, 'scale: fractions of the image area in (0, 1]')
        .default([0.9, 1]),
      ratio: range(Number.MIN_VALUE, 'ratio').default([3 / 4, 4 / 3]),
    })
    .optional(),
  /** Probability of a left–right mirror. Off for captions that say "left"/"right" (the shapes set's do). */
  hflip: z.number().min(0).max(1).optional(),
  /** Small colour jitter, applied in a random order per image like torchvision's ColorJitter (no hue). */
  colorJitter: z
    .strictObject({
      brightness: jitterAmount.optional(),
      contrast: jitterAmount.optional(),
      saturation: jitterAmount.optional(),
    })
    .optional(),
});

export type AugmentOptions = z.input<typeof AugmentOptionsSchema>;
export type ResolvedAugmentOptions = z.output<typeof AugmentOptionsSchema>;

/** torchvision's `_check_input`: a number x means [max(0, 1 − x), 1 + x]. */
export function factorRange(v: number | readonly [number, number]): [number, number] {
  return typeof v === 'number' ? [Math.max(0, 1 - v), 1 + v] : [v[0], v[1]];
}
