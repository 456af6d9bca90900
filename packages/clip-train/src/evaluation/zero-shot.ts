import * as tf from '@tensorflow/tfjs-core';
import {
  confusionMatrix,
  perClassAccuracy,
  topKAccuracy,
  ValueError,
  ZeroShotClassifier,
  type CLIPModel,
  type ImageProcessor,
  type Tokenize,
} from '@clip-ts/core';
import { ClassificationLoader, disposeBatch, type ClassificationDataset } from '@clip-ts/data';

// Zero-shot evaluation over a labelled set, the one implementation `clip zeroshot` and the demo share:
// class embeddings (with template ensembling) come from core's ZeroShotClassifier, top-k from core's metrics.

/** Image embeddings of a whole classification split, on the CPU, with their labels. */
export interface LabelledEmbeddings {
  data: Float32Array;
  count: number;
  dim: number;
  labels: number[];
}

/**
 * Embed every image of `dataset` (in order) with the model's image tower. Streams batches through a
 * ClassificationLoader; leaves no tensor behind. `onBatch` reports progress (images done, total).
 */
export async function embedClassificationSet(
  model: CLIPModel,
  processor: ImageProcessor,
  dataset: ClassificationDataset,
  options: {
    batchSize?: number;
    onBatch?: (done: number, total: number) => void;
    /** Computes each batch's normalised embeddings instead of model.encodeImages, with the same weights (an EmbedPool over `model`). */
    encoder?: { embedImages(pixels: tf.Tensor4D): Promise<Float32Array> };
  } = {},
): Promise<LabelledEmbeddings> {
  const dim = model.projectionDim;
  const data = new Float32Array(dataset.length * dim);
  const labels: number[] = new Array<number>(dataset.length).fill(-1);
  const loader = new ClassificationLoader(dataset, { batchSize: options.batchSize ?? 64, imageProcessor: processor });
  let row = 0;
  for await (const batch of loader.batches(0)) {
    try {
      let values: Float32Array;
      if (options.encoder) values = await options.encoder.embedImages(batch.pixelValues);
      else {
        const emb = model.encodeImages(batch.pixelValues);
        values = (await emb.data()) as Float32Array;
        emb.dispose();
      }
      batch.indices.forEach((idx, i) => {
        data.set(values.subarray(i * dim, (i + 1) * dim), idx * dim);
        labels[idx] = batch.labels[i] as number;
      });
      row += batch.indices.length;
      options.onBatch?.(row, dataset.length);
    } finally {
      disposeBatch(batch);
    }
  }
  if (labels.some((l) => l < 0)) throw new ValueError(`${dataset.name}/${dataset.split}: some images were skipped; cannot score them`);
  return { data, count: dataset.length, dim, labels };
}

export interface TemplateScore {
  /** The template, or `ensemble of N` for the averaged prompt embeddings. */
  template: string;
  /** k → accuracy; k larger than the class count is left out. */
  topK: Record<number, number>;
}

export interface ZeroShotReport {
  classNames: string[];
  images: number;
  /** 1 / number of candidate classes: what guessing scores on top-1. */
  chance: number;
  scores: TemplateScore[];
  /** The template (or ensemble) the per-class accuracy and confusion matrix below are for. */
  detail: { template: string; perClassAccuracy: number[]; confusionMatrix: number[][]; predictions: number[] };
}

/**
 * Score each template separately (as the reference reports them) and, with several, their ensemble.
 * `classNames` are the candidates; `labels` index into them. The detail (per-class accuracy, confusion
 * matrix) is for the ensemble when there is one, else the single template.
 */
export function scoreTemplates(
  model: CLIPModel,
  tokenize: Tokenize,
  classNames: readonly string[],
  images: { data: Float32Array; count: number; dim: number; labels: readonly number[] },
  templates: readonly string[],
  ks: readonly number[] = [1, 3, 5],
): ZeroShotReport {
  if (templates.length === 0) throw new ValueError('zero-shot: no templates');
  const sets: Array<{ name: string; templates: readonly string[] }> = templates.map((t) => ({ name: t, templates: [t] }));
  if (templates.length > 1) sets.push({ name: `ensemble of ${templates.length}`, templates });
  const imageEmb = tf.tensor2d(images.data, [images.count, images.dim]);
  const labels = [...images.labels];
  try {
    const scores: TemplateScore[] = [];
    let detail: ZeroShotReport['detail'] | undefined;
    for (const set of sets) {
      const clf = ZeroShotClassifier.create(model, tokenize, classNames, set.templates);
      const sims = tf.matMul(imageEmb, clf.classEmbeddings, false, true) as tf.Tensor2D;
      try {
        const topK: Record<number, number> = {};
        for (const k of ks) if (k <= classNames.length) topK[k] = topKAccuracy(sims, labels, k);
        scores.push({ template: set.name, topK });
        if (set === sets[sets.length - 1]) {
          const argMax = tf.argMax(sims, 1);
          const predictions = Array.from(argMax.dataSync());
          argMax.dispose();
          detail = {
            template: set.name,
            predictions,
            perClassAccuracy: perClassAccuracy(predictions, labels, classNames.length),
            confusionMatrix: confusionMatrix(predictions, labels, classNames.length),
          };
        }
      } finally {
        sims.dispose();
        clf.dispose();
      }
    }
    return { classNames: [...classNames], images: images.count, chance: 1 / classNames.length, scores, detail: detail as ZeroShotReport['detail'] };
  } finally {
    imageEmb.dispose();
  }
}

/** Restrict a labelled set to the images of some classes, relabelled as indices into `keep`. */
export function restrictClasses(
  images: LabelledEmbeddings,
  classNames: readonly string[],
  keep: readonly string[],
): LabelledEmbeddings {
  const map = new Map(keep.map((name, i) => [classNames.indexOf(name), i]));
  if (map.has(-1)) throw new ValueError(`restrictClasses: ${keep.filter((k) => !classNames.includes(k)).join(', ')} not among the classes`);
  const rows = images.labels.flatMap((l, i) => (map.has(l) ? [i] : []));
  const data = new Float32Array(rows.length * images.dim);
  rows.forEach((r, i) => data.set(images.data.subarray(r * images.dim, (r + 1) * images.dim), i * images.dim));
  return { data, count: rows.length, dim: images.dim, labels: rows.map((r) => map.get(images.labels[r] as number) as number) };
}
