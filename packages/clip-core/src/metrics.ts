import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, ValueError } from './errors.js';
import { l2Normalize } from './loss.js';

/**
 * Evaluation metrics. Ranks count the candidates scoring STRICTLY higher than the target, so ties are
 * resolved in the target's favour (as `torch.topk` does for the usual case of distinct scores).
 * Score matrices are `number[][]`-like rows or a tf.Tensor2D (read with one sync; the caller keeps it).
 */
export type ScoreMatrix = ReadonlyArray<ArrayLike<number>> | tf.Tensor2D;

export interface RecallAtK {
  k: number;
  /** Fraction of images with a matching caption in their top k texts. */
  imageToText: number;
  /** Fraction of captions whose image is in their top k images. */
  textToImage: number;
}

function rows(scores: ScoreMatrix): { n: number; m: number; at: (i: number, j: number) => number } {
  if (scores instanceof tf.Tensor) {
    if (scores.rank !== 2) throw new ShapeError(`scores must be 2-D, got shape [${scores.shape.join(', ')}]`);
    const [n, m] = scores.shape as [number, number];
    const data = scores.dataSync();
    return { n, m, at: (i, j) => data[i * m + j] as number };
  }
  const m = scores[0]?.length ?? 0;
  scores.forEach((r, i) => {
    if (r.length !== m) throw new ShapeError(`scores row ${i} has ${r.length} columns, row 0 has ${m}`);
  });
  return { n: scores.length, m, at: (i, j) => (scores[i] as ArrayLike<number>)[j] as number };
}

function checkK(k: number, max: number, what: string): void {
  if (!Number.isSafeInteger(k) || k < 1) throw new ValueError(`${what}: k must be a positive integer, got ${k}`);
  if (max > 0 && k > max) throw new ValueError(`${what}: k = ${k} exceeds the ${max} candidates`);
}

function checkLabels(labels: readonly number[], n: number, numClasses: number, what: string): void {
  if (labels.length !== n) throw new ShapeError(`${what}: ${labels.length} labels for ${n} rows`);
  labels.forEach((l, i) => {
    if (!Number.isSafeInteger(l) || l < 0 || l >= numClasses) {
      throw new ValueError(`${what}: label ${i} = ${l} is not a class index in [0, ${numClasses})`);
    }
  });
}

/** Fraction of rows whose true label (`labels[i]`) is among the k highest scores of row i. */
export function topKAccuracy(scores: ScoreMatrix, labels: readonly number[], k = 1): number {
  const s = rows(scores);
  checkK(k, s.m, 'topKAccuracy');
  checkLabels(labels, s.n, s.m, 'topKAccuracy');
  if (s.n === 0) throw new ValueError('topKAccuracy: no rows');
  let hits = 0;
  for (let i = 0; i < s.n; i++) {
    const target = s.at(i, labels[i] as number);
    let higher = 0;
    for (let j = 0; j < s.m && higher < k; j++) if (s.at(i, j) > target) higher++;
    if (higher < k) hits++;
  }
  return hits / s.n;
}

/**
 * confusion[t][p] = number of samples of true class t predicted as p.
 */
export function confusionMatrix(predictions: readonly number[], labels: readonly number[], numClasses: number): number[][] {
  if (!Number.isSafeInteger(numClasses) || numClasses < 1) throw new ValueError(`confusionMatrix: numClasses must be ≥ 1, got ${numClasses}`);
  checkLabels(labels, predictions.length, numClasses, 'confusionMatrix (labels)');
  checkLabels(predictions, labels.length, numClasses, 'confusionMatrix (predictions)');
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  labels.forEach((t, i) => ((m[t] as number[])[predictions[i] as number] as number)++);
  return m;
}

/** Accuracy of each class (recall per class); NaN for a class with no samples. */
export function perClassAccuracy(predictions: readonly number[], labels: readonly number[], numClasses: number): number[] {
  return confusionMatrix(predictions, labels, numClasses).map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? NaN : (row[c] as number) / total;
  });
}

/**
 * In-batch retrieval accuracy from a square logits matrix whose diagonal holds the matching pairs (the
 * reference study's top-1/top-5): image→text ranks each row's diagonal, text→image each column's. Runs
 * the same ranking as `inBatchHits` (one implementation), then reads the counts back.
 */
export function inBatchTopK(logitsPerImage: ScoreMatrix, ks: readonly number[] = [1, 5]): RecallAtK[] {
  const s = rows(logitsPerImage);
  if (s.n !== s.m || s.n === 0) throw new ShapeError(`inBatchTopK: logits must be square and non-empty, got ${s.n}×${s.m}`);
  for (const k of ks) checkK(k, 0, 'inBatchTopK');
  const [i2t, t2i] = tf.tidy(() => {
    const scores = logitsPerImage instanceof tf.Tensor ? logitsPerImage : tf.tensor2d(logitsPerImage.map((r) => Array.from(r)));
    const hits = hitsFromScores(scores, ks);
    return [hits.imageToText, hits.textToImage];
  });
  const a = i2t.dataSync();
  const b = t2i.dataSync();
  tf.dispose([i2t, t2i]);
  return ks.map((k, j) => ({ k, imageToText: (a[j] as number) / s.n, textToImage: (b[j] as number) / s.n }));
}

/**
 * Per-batch retrieval hits, the reference's in-batch protocol: image i's caption is the positive among the
 * batch's B captions. Returns NEW int32 tensors [ks.length] counting rows whose positive ranks within top
 * k, image→text and text→image. Ties count in the positive's favour. No data is read back, so a loop over
 * batches can sum the counts on the device.
 */
export function inBatchHits(
  imageEmbeds: tf.Tensor2D,
  textEmbeds: tf.Tensor2D,
  ks: readonly number[],
): { imageToText: tf.Tensor1D; textToImage: tf.Tensor1D } {
  return tf.tidy(() => {
    const img = tf.div(imageEmbeds, tf.norm(imageEmbeds, 'euclidean', 1, true));
    const txt = tf.div(textEmbeds, tf.norm(textEmbeds, 'euclidean', 1, true));
    return hitsFromScores(tf.matMul(img, txt, false, true), ks);
  });
}

/** Hit counts from a square score matrix (rows: images, columns: their captions); NEW tensors. */
function hitsFromScores(sims: tf.Tensor2D, ks: readonly number[]): { imageToText: tf.Tensor1D; textToImage: tf.Tensor1D } {
  return tf.tidy(() => {
    // The diagonal taken from `sims` itself, so the positive never outranks itself by rounding.
    const diag = tf.sum(tf.mul(sims, tf.eye(sims.shape[0])), 1);
    const count = (better: tf.Tensor) => tf.sum(tf.cast(better, 'int32'), 1);
    // rank = how many candidates score strictly higher than the positive
    const rankI2T = count(tf.greater(sims, tf.expandDims(diag, 1)));
    const rankT2I = count(tf.greater(tf.transpose(sims), tf.expandDims(diag, 1)));
    const hits = (rank: tf.Tensor) => tf.stack(ks.map((k) => tf.sum(tf.cast(tf.less(rank, k), 'int32')))) as tf.Tensor1D;
    return { imageToText: hits(rankI2T), textToImage: hits(rankT2I) };
  });
}

/**
 * Retrieval recall@K over a whole split with several captions per image. `textToImage[j]` is the index
 * of caption j's image. image→text: an image is a hit if ANY of its captions ranks in its top K;
 * text→image: a caption is a hit if its image ranks in its top K. Cosine similarity (embeddings are
 * normalised here). Similarities are computed `chunkSize` rows at a time, so 1000 images × 5000 captions
 * never materialise a full matrix. Does not dispose its inputs.
 */
export async function retrievalRecallAtK(
  imageEmbeds: tf.Tensor2D,
  textEmbeds: tf.Tensor2D,
  textToImage: readonly number[],
  ks: readonly number[] = [1, 5, 10],
  chunkSize = 256,
): Promise<RecallAtK[]> {
  const [n, d] = imageEmbeds.shape;
  const [m, d2] = textEmbeds.shape;
  if (d !== d2) throw new ShapeError(`retrievalRecallAtK: image dim ${d} ≠ text dim ${d2}`);
  checkLabels(textToImage, m, n, 'retrievalRecallAtK (textToImage)');
  for (const k of ks) checkK(k, 0, 'retrievalRecallAtK');
  const captionsOf: number[][] = Array.from({ length: n }, () => []);
  textToImage.forEach((img, j) => (captionsOf[img] as number[]).push(j));
  const orphan = captionsOf.findIndex((c) => c.length === 0);
  if (orphan >= 0) throw new ValueError(`retrievalRecallAtK: image ${orphan} has no caption`);

  const [img, txt] = tf.tidy(() => [l2Normalize(imageEmbeds), l2Normalize(textEmbeds)]) as [tf.Tensor2D, tf.Tensor2D];
  try {
    // image→text: rank = number of captions scoring above the image's best own caption.
    const i2tRank = await chunkedRanks(img, txt, chunkSize, (i, sims) =>
      Math.max(...(captionsOf[i] as number[]).map((j) => sims[j] as number)),
    );
    // text→image: rank of the caption's own image.
    const t2iRank = await chunkedRanks(txt, img, chunkSize, (j, sims) => sims[textToImage[j] as number] as number);
    return ks.map((k) => ({ k, imageToText: fractionBelow(i2tRank, k), textToImage: fractionBelow(t2iRank, k) }));
  } finally {
    tf.dispose([img, txt]);
  }
}

/** Fraction of ranks < k (a hit in the top k). */
function fractionBelow(ranks: Int32Array, k: number): number {
  return ranks.filter((r) => r < k).length / ranks.length;
}

/** For each query row, count candidates with similarity strictly above `target(row, sims)`. */
async function chunkedRanks(
  queries: tf.Tensor2D,
  candidates: tf.Tensor2D,
  chunkSize: number,
  target: (row: number, sims: Float32Array) => number,
): Promise<Int32Array> {
  const [q] = queries.shape;
  const c = candidates.shape[0];
  const ranks = new Int32Array(q);
  for (let start = 0; start < q; start += chunkSize) {
    const size = Math.min(chunkSize, q - start);
    const sims = tf.tidy(() => tf.matMul(tf.slice(queries, [start, 0], [size, -1]), candidates, false, true));
    const data = (await sims.data()) as Float32Array;
    sims.dispose();
    for (let r = 0; r < size; r++) {
      const row = data.subarray(r * c, (r + 1) * c);
      const t = target(start + r, row);
      let higher = 0;
      for (let j = 0; j < c; j++) if ((row[j] as number) > t) higher++;
      ranks[start + r] = higher;
    }
  }
  return ranks;
}
