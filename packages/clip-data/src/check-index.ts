import { ValueError } from '@clip-ts/core';

/** A ValueError naming the dataset (`what`) unless `index` is an integer in [0, length). */
export function checkIndex(index: number, length: number, what: string): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new ValueError(`${what}: index ${index} out of range [0, ${length})`);
  }
}
