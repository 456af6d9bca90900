import { expect } from 'vitest';

/** Parity against a float64 reference stored as float32: |got − want| ≤ rtol · max|want| per tensor. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-5): void {
  expect(got.length, what).toBe(want.length);
  const scale = Math.max(...Array.from(want, Math.abs));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs((got[i] as number) - (want[i] as number)));
  expect(worst / scale, `${what}: max abs error ${worst} vs scale ${scale}`).toBeLessThanOrEqual(rtol);
}
