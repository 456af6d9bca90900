import { ShapeError, ValueError } from '@clip-ts/core';

/**
 * Row-major embeddings on the CPU: `rows` vectors of `dim` floats in `data`. Holds no tensor, so there is
 * nothing to dispose; `CLIP.embedImages` / `embedTexts` return them L2-normalised.
 */
export class Embeddings {
  constructor(
    readonly data: Float32Array,
    readonly rows: number,
    readonly dim: number,
  ) {
    if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(dim) || dim < 1) {
      throw new ValueError(`Embeddings: rows and dim must be integers (rows >= 0, dim >= 1), got ${rows} × ${dim}`);
    }
    if (data.length !== rows * dim) throw new ShapeError(`Embeddings: ${data.length} values for ${rows} × ${dim}`);
  }

  /** Row `i` (a view into `data`, not a copy). */
  row(i: number): Float32Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.rows) throw new ValueError(`Embeddings.row: index ${i} is outside [0, ${this.rows})`);
    return this.data.subarray(i * this.dim, (i + 1) * this.dim);
  }
}

export interface SearchHit {
  /** Row of the searched embeddings. */
  index: number;
  /** Dot product with the query: the cosine for normalised embeddings. */
  score: number;
}

/** The `k` rows of `embeddings` with the highest dot product with `query`, best first (ties: lower index first). */
export function topKByDot(query: Float32Array, embeddings: Embeddings, k: number): SearchHit[] {
  if (query.length !== embeddings.dim) {
    throw new ShapeError(`search: the query has dimension ${query.length}, the embeddings ${embeddings.dim}`);
  }
  if (!Number.isSafeInteger(k) || k < 1) throw new ValueError(`search: k must be a positive integer, got ${k}`);
  const { data, dim, rows } = embeddings;
  const hits: SearchHit[] = [];
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (query[j] as number) * (data[r * dim + j] as number);
    hits.push({ index: r, score: s });
  }
  hits.sort((a, b) => b.score - a.score || a.index - b.index);
  return hits.slice(0, k);
}
