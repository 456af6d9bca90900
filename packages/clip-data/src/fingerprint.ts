import { createHash } from 'node:crypto';

/** Short stable hash (hex) of a sequence of strings; used for dataset fingerprints. */
export function hashStrings(parts: Iterable<string>): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    // A separator, so ['ab', 'c'] and ['a', 'bc'] hash differently.
    h.update('\u0000');
  }
  return h.digest('hex').slice(0, 16);
}
