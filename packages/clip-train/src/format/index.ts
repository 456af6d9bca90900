// A subpath (`@clip-ts/train/format`), not the main index: the results table and the CLI's tables share one
// writer, but text formatting is not part of the training API.
export { markdownTable, pct } from './markdown.js';
export type { Align } from './markdown.js';
