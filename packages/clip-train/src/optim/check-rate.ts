import { ValueError } from '@clip-ts/core';

/** A ValueError unless `value` is a finite number ≥ 0. */
export function checkRate(what: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new ValueError(`optimizer: ${what} must be a finite number ≥ 0, got ${value}`);
}
