import * as tf from '@tensorflow/tfjs-core';
import { inBatchHits, retrievalRecallAtK, type RecallAtK } from '@clip-ts/core';
import { TrainingError } from '../trainer/errors.js';
import type { BatchSource, Logs, TrainTask } from '../trainer/types.js';

/** Full-split retrieval: every image of the split against every caption of it. */
export interface SplitRetrieval {
  images: number;
  captions: number;
  recall: RecallAtK[];
}

/** Embeddings of every caption of a split and the image each belongs to (see `encodeAllCaptions`). */
export interface CaptionEmbeddings {
  /** [captions, D]; the evaluation disposes it once read. */
  embeds: tf.Tensor2D;
  /** imageIndex[j] = dataset index of caption j's image. */
  imageIndex: readonly number[];
}

export interface RetrievalOptions<B> {
  /** k values of Recall@K. */
  ks: readonly number[];
  /** Number of images in the split; every one must appear in exactly one batch. */
  numImages: number;
  /** Dataset index of each row of a batch, so the loss pass's image embeddings are reused, not re-encoded. */
  imageIndices(batch: B): readonly number[];
  /** Called once after the loss pass; the returned tensor is handed over (disposed here). */
  captions(): Promise<CaptionEmbeddings>;
}

export interface EvaluateSplitOptions<B> {
  /** Epoch whose batches (caption picks) to evaluate; default 0. */
  epoch?: number;
  /** k values of the in-batch top-k (default [1, 5]). */
  topK?: readonly number[];
  /** Also compute full-split Recall@K (the final test pass and `clip eval`; not per-epoch validation). */
  retrieval?: RetrievalOptions<B>;
}

export interface SplitEvaluation {
  /** `loss`, `top{k}` (image→text), `text_top{k}` (text→image), `batch_size` (largest batch seen). */
  logs: Logs;
  retrieval?: SplitRetrieval;
}

/**
 * The one evaluation protocol, used by the Trainer's validation, runExperiment's test pass and `clip eval`.
 * Over every batch of `source` (training behaviour off): the loss weighted by the batch's pairs, and
 * in-batch top-k counted over ALL batches including a partial last one (so top-k is a fraction of all
 * pairs, each out of its own batch's candidates). With `retrieval`, the batches' image embeddings are
 * kept (each image is encoded once) and ranked against every caption of the split. Sums stay on the
 * device until the end: one read per evaluation, none per batch. Returns plain numbers; no tensor escapes.
 */
export function evaluateCaptionSplit<B>(
  task: TrainTask<B>,
  source: BatchSource<B>,
  options: EvaluateSplitOptions<B> & { retrieval: RetrievalOptions<B> },
): Promise<Required<SplitEvaluation>>;
export function evaluateCaptionSplit<B>(task: TrainTask<B>, source: BatchSource<B>, options?: EvaluateSplitOptions<B>): Promise<SplitEvaluation>;
export async function evaluateCaptionSplit<B>(task: TrainTask<B>, source: BatchSource<B>, options: EvaluateSplitOptions<B> = {}): Promise<SplitEvaluation> {
  const topK = options.topK ?? [1, 5];
  const retrieval = options.retrieval;
  let lossSum: tf.Scalar = tf.scalar(0);
  let i2t: tf.Tensor1D = tf.zeros([topK.length], 'int32');
  let t2i: tf.Tensor1D = tf.zeros([topK.length], 'int32');
  const imageParts: tf.Tensor2D[] = [];
  const order: number[] = [];
  let pairs = 0;
  let maxBatch = 0;
  try {
    for await (const batch of source.batches(options.epoch ?? 0)) {
      try {
        const n = task.batchSize(batch);
        pairs += n;
        maxBatch = Math.max(maxBatch, n);
        const next = tf.tidy(() => {
          const out = task.evalOutputs(batch);
          const hits = inBatchHits(out.imageEmbeds, out.textEmbeds, topK);
          return {
            loss: tf.add(lossSum, tf.mul(out.loss, n)) as tf.Scalar,
            i2t: tf.add(i2t, hits.imageToText) as tf.Tensor1D,
            t2i: tf.add(t2i, hits.textToImage) as tf.Tensor1D,
            images: retrieval ? out.imageEmbeds : undefined,
          };
        });
        tf.dispose([lossSum, i2t, t2i]);
        ({ loss: lossSum, i2t, t2i } = next);
        if (next.images) {
          imageParts.push(next.images);
          order.push(...(retrieval as RetrievalOptions<B>).imageIndices(batch));
        }
      } finally {
        task.disposeBatch(batch);
      }
    }
    if (pairs === 0) throw new TrainingError('evaluation split yielded no batches');
    const [loss, a, b] = await Promise.all([lossSum.data(), i2t.data(), t2i.data()]);
    const logs: Logs = { loss: (loss[0] as number) / pairs, batch_size: maxBatch };
    topK.forEach((k, j) => {
      logs[`top${k}`] = (a[j] as number) / pairs;
      logs[`text_top${k}`] = (b[j] as number) / pairs;
    });
    if (!retrieval) return { logs };
    return { logs, retrieval: await recallOverSplit(imageParts, order, retrieval) };
  } finally {
    tf.dispose([lossSum, i2t, t2i, ...imageParts]);
  }
}

/** Put the pass's image embeddings in dataset order and rank them against every caption. */
async function recallOverSplit<B>(parts: tf.Tensor2D[], order: readonly number[], r: RetrievalOptions<B>): Promise<SplitRetrieval> {
  const rowOf = new Int32Array(r.numImages).fill(-1);
  order.forEach((img, row) => {
    if (!Number.isInteger(img) || img < 0 || img >= r.numImages) throw new TrainingError(`retrieval: batch row names image ${img}, outside the split's ${r.numImages}`);
    if (rowOf[img] !== -1) throw new TrainingError(`retrieval: image ${img} appears in two batches`);
    rowOf[img] = row;
  });
  const missing = rowOf.indexOf(-1);
  if (missing >= 0) throw new TrainingError(`retrieval: image ${missing} of ${r.numImages} was in no batch (skipped as unreadable?)`);
  const captions = await r.captions();
  const images = tf.tidy(() => tf.gather(tf.concat(parts), tf.tensor1d(rowOf, 'int32')) as tf.Tensor2D);
  try {
    const recall = await retrievalRecallAtK(images, captions.embeds, captions.imageIndex, r.ks);
    return { images: r.numImages, captions: captions.embeds.shape[0], recall };
  } finally {
    tf.dispose([images, captions.embeds]);
  }
}
