import { ValueError } from './errors.js';

/**
 * Which pairs of a batch count as positives. 'diagonal': only image i with caption i (the reference).
 * 'grouped': rows that show the same image (same dataset index) or whose captions are identical after
 * normalisation are one group, and every image–caption pair within a group is positive. 'auto': groups by
 * dataset index only — a duplicated image is certainly a positive, while equal captions may be a choice of
 * the data; loaders that yield each image once per epoch (all of ours) make 'auto' the same as 'diagonal'.
 */
export const TARGET_MODES = ['auto', 'diagonal', 'grouped'] as const;
export type TargetMode = (typeof TARGET_MODES)[number];

/** Lowercase, whitespace runs collapsed to one space, trimmed, trailing punctuation stripped. */
export function normalizeCaption(caption: string): string {
  return caption
    .toLowerCase()
    .replace(/\s+/gu, ' ')
    .trim()
    .replace(/[\s\p{P}]+$/u, '');
}

/**
 * Group id per row (the smallest row index of its group): rows are joined when they share a dataset index
 * or (given `captions`) a normalised caption; joining is transitive.
 */
export function positiveGroups(indices: readonly number[], captions?: readonly string[]): number[] {
  if (captions && captions.length !== indices.length) {
    throw new ValueError(`positiveGroups: ${indices.length} indices but ${captions.length} captions`);
  }
  const parent = indices.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i] as number] as number;
    return i;
  };
  const join = (keys: readonly unknown[]): void => {
    const first = new Map<unknown, number>();
    keys.forEach((k, i) => {
      const j = first.get(k);
      if (j === undefined) first.set(k, i);
      else {
        const [a, b] = [find(i), find(j)];
        parent[Math.max(a, b)] = Math.min(a, b);
      }
    });
  };
  join(indices);
  if (captions) join(captions.map(normalizeCaption));
  return parent.map((_, i) => find(i));
}

/**
 * The [N, N] row-major 0/1 positives mask for a batch under `mode`, or undefined when it is the identity
 * (so callers keep the plain diagonal loss, bit for bit). `captions` is needed for 'grouped'.
 */
export function positiveMask(
  mode: TargetMode,
  indices: readonly number[],
  captions?: readonly string[],
): Float32Array | undefined {
  if (mode === 'diagonal') return undefined;
  if (mode === 'grouped' && !captions) throw new ValueError("positiveMask: targets 'grouped' needs the batch's captions");
  const groups = positiveGroups(indices, mode === 'grouped' ? captions : undefined);
  if (groups.every((g, i) => g === i)) return undefined;
  const n = groups.length;
  const mask = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) mask[i * n + j] = groups[i] === groups[j] ? 1 : 0;
  return mask;
}
