/**
 * A few-shot adapter trained in the page: a linear head on frozen, normalised image embeddings,
 * initialised from the zero-shot classifier (weights = the labels' text embeddings, scaled by CLIP's
 * logit scale; bias 0), so before any step it predicts exactly what zero-shot does, and training from a
 * handful of labelled images can only start from there. Full-batch Adam on cross-entropy with a pull
 * back towards the prompt weights (L2 on W − W₀), which keeps a 1–2-shot head from overfitting.
 * Everything is plain numbers in and out; tensors live only inside `trainFewShot`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ValueError } from '@clip-ts/core';

/** Row-major vectors (CLIP's `Embeddings` fits): `rows` × `dim` floats in `data`. */
export interface EmbeddingRows {
  readonly data: Float32Array;
  readonly rows: number;
  readonly dim: number;
}

export interface FewShotOptions {
  steps?: number;
  learningRate?: number;
  /** Weight of ‖W − W₀‖² (the pull towards the zero-shot weights). */
  anchor?: number;
}

export interface FewShotHead {
  /** [classes, dim] row-major. */
  weights: Float32Array;
  bias: Float32Array;
  classes: number;
  dim: number;
  /** Training loss before the first and after the last step. */
  lossBefore: number;
  lossAfter: number;
}

function rowsOf(e: EmbeddingRows, idx: readonly number[]): Float32Array {
  const out = new Float32Array(idx.length * e.dim);
  idx.forEach((r, i) => out.set(e.data.subarray(r * e.dim, (r + 1) * e.dim), i * e.dim));
  return out;
}

/**
 * Train on `images` rows `trainRows` with class ids `trainLabels` (indices into `classText` rows).
 * `scale` is the model's exp(logit_scale). Deterministic for the same inputs and backend.
 */
export async function trainFewShot(
  images: EmbeddingRows,
  trainRows: readonly number[],
  trainLabels: readonly number[],
  classText: EmbeddingRows,
  scale: number,
  options: FewShotOptions = {},
): Promise<FewShotHead> {
  const { steps = 200, learningRate = 0.05, anchor = 1e-3 } = options;
  if (trainRows.length === 0) throw new ValueError('few-shot: no labelled training images');
  if (trainRows.length !== trainLabels.length) throw new ValueError('few-shot: one label per training image');
  if (images.dim !== classText.dim) throw new ValueError(`few-shot: image dim ${images.dim} ≠ text dim ${classText.dim}`);
  const bad = trainLabels.find((c) => !Number.isInteger(c) || c < 0 || c >= classText.rows);
  if (bad !== undefined) throw new ValueError(`few-shot: class id ${bad} is not one of the ${classText.rows} labels`);

  const c = classText.rows;
  const d = classText.dim;
  const x = tf.tensor2d(rowsOf(images, trainRows), [trainRows.length, d]);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d([...trainLabels], 'int32'), c));
  const w0 = tf.tidy(() => tf.mul(tf.tensor2d(classText.data, [c, d]), scale));
  // Variables outlive tidy; the initial values made for them do not.
  const w = tf.tidy(() => tf.variable(tf.clone(w0)));
  const b = tf.tidy(() => tf.variable(tf.zeros([c])));
  const optimizer = tf.train.adam(learningRate);
  const lossFn = (): tf.Scalar =>
    tf.tidy(() => {
      const logits = tf.add(tf.matMul(x, w, false, true), b);
      const ce = tf.mean(tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1)));
      return tf.add(ce, tf.mul(anchor, tf.sum(tf.square(tf.sub(w, w0))))) as tf.Scalar;
    });
  try {
    const first = lossFn();
    const lossBefore = (await first.data())[0] as number;
    first.dispose();
    for (let s = 0; s < steps; s++) {
      optimizer.minimize(lossFn, false, [w, b]);
    }
    const last = lossFn();
    const lossAfter = (await last.data())[0] as number;
    last.dispose();
    return {
      weights: (await w.data()) as Float32Array,
      bias: (await b.data()) as Float32Array,
      classes: c,
      dim: d,
      lossBefore,
      lossAfter,
    };
  } finally {
    optimizer.dispose();
    tf.dispose([x, y, w0, w, b]);
  }
}

/** Class ids (argmax of x·Wᵀ + b) for embedding rows `rows`. */
export function predict(head: Pick<FewShotHead, 'weights' | 'bias' | 'classes' | 'dim'>, images: EmbeddingRows, rows: readonly number[]): number[] {
  return rows.map((r) => {
    let best = 0;
    let bestScore = -Infinity;
    for (let k = 0; k < head.classes; k++) {
      let s = head.bias[k] as number;
      for (let j = 0; j < head.dim; j++) s += (head.weights[k * head.dim + j] as number) * (images.data[r * images.dim + j] as number);
      if (s > bestScore) {
        bestScore = s;
        best = k;
      }
    }
    return best;
  });
}

/** The zero-shot head: what the adapter starts from (weights = scale · text embeddings, no bias). */
export function zeroShotHead(classText: EmbeddingRows, scale: number): Pick<FewShotHead, 'weights' | 'bias' | 'classes' | 'dim'> {
  return { weights: classText.data.map((v) => v * scale), bias: new Float32Array(classText.rows), classes: classText.rows, dim: classText.dim };
}

export function accuracy(predicted: readonly number[], truth: readonly number[]): number {
  if (truth.length === 0) return NaN;
  return predicted.filter((p, i) => p === truth[i]).length / truth.length;
}
