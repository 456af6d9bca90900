import * as tf from '@tensorflow/tfjs-core';
import type { CLIPModel } from './clip-model.js';
import type { ImageInput, TextInput } from './encoder.js';
import { ValueError } from './errors.js';
import { l2Normalize } from './loss.js';

/**
 * Zero-shot classification: each class is the text embedding of its prompts; an image goes to the class
 * whose embedding is most similar. With several templates, the per-template embeddings are normalised,
 * averaged and re-normalised (CLIP's prompt ensembling). Probabilities follow the model's loss: a softmax
 * over the classes for CLIP, an independent sigmoid per class (they need not sum to 1) for SigLIP.
 */

export const DEFAULT_TEMPLATES: readonly string[] = ['a photo of a {}.'];

/** Texts → token tensors; the classifier disposes what it returns. */
export type Tokenize = (texts: string[]) => TextInput;

export interface ZeroShotPrediction {
  /** Class indices, best first. */
  indices: number[];
  labels: string[];
  /**
   * For the same classes: softmax(exp(logitScale) · cosine) over all classes (CLIP models), or
   * sigmoid(exp(logitScale) · cosine + logitBias) per class (SigLIP models; see `probabilities`).
   */
  probabilities: number[];
}

/** Texts tokenised and encoded per call; bounds memory for many classes × templates. */
const TEXT_BATCH = 256;

export class ZeroShotClassifier {
  readonly classNames: readonly string[];
  readonly templates: readonly string[];
  /** [numClasses, projectionDim], normalised; owned by the classifier. */
  readonly classEmbeddings: tf.Tensor2D;
  /** How logits become probabilities; decided by the model's loss (CLIPModel.probabilities). */
  readonly probabilities: 'softmax' | 'sigmoid';

  private constructor(
    private readonly model: CLIPModel,
    classNames: readonly string[],
    templates: readonly string[],
    classEmbeddings: tf.Tensor2D,
  ) {
    this.classNames = classNames;
    this.templates = templates;
    this.classEmbeddings = classEmbeddings;
    this.probabilities = model.probabilities;
  }

  /** Class prompts: every template with `{}` replaced by the class name. */
  static prompts(className: string, templates: readonly string[]): string[] {
    return templates.map((t) => t.replaceAll('{}', className));
  }

  /**
   * Embed every class under every template. Throws ValueError for an empty class list, an empty template
   * list, or a template without `{}`. The classifier borrows `model` (does not dispose it).
   */
  static create(
    model: CLIPModel,
    tokenize: Tokenize,
    classNames: readonly string[],
    templates: readonly string[] = DEFAULT_TEMPLATES,
  ): ZeroShotClassifier {
    if (classNames.length === 0) throw new ValueError('ZeroShotClassifier: the class list is empty');
    const blank = classNames.findIndex((c) => c.trim() === '');
    if (blank >= 0) throw new ValueError(`ZeroShotClassifier: class ${blank} has an empty name`);
    if (templates.length === 0) throw new ValueError('ZeroShotClassifier: the template list is empty');
    templates.forEach((t, i) => {
      if (!t.includes('{}')) {
        throw new ValueError(`ZeroShotClassifier: template ${i} ${JSON.stringify(t)} has no '{}' placeholder for the class name`);
      }
    });
    const texts = classNames.flatMap((c) => ZeroShotClassifier.prompts(c, templates)); // class-major
    const perPrompt: tf.Tensor2D[] = [];
    try {
      for (let start = 0; start < texts.length; start += TEXT_BATCH) {
        const input = tokenize(texts.slice(start, start + TEXT_BATCH));
        try {
          perPrompt.push(model.encodeTexts(input));
        } finally {
          tf.dispose([input.inputIds, input.attentionMask]);
        }
      }
      const embeddings = tf.tidy(() => {
        const all = perPrompt.length === 1 ? (perPrompt[0] as tf.Tensor2D) : tf.concat(perPrompt, 0);
        const byClass = tf.reshape(all, [classNames.length, templates.length, -1]);
        return l2Normalize(tf.mean(byClass, 1)) as tf.Tensor2D;
      });
      return new ZeroShotClassifier(model, [...classNames], [...templates], embeddings);
    } finally {
      tf.dispose(perPrompt);
    }
  }

  /** Logits [batch, numClasses] (eval mode; with the bias for SigLIP models). Caller owns the result. */
  logits(pixels: ImageInput): tf.Tensor2D {
    return tf.tidy(() => this.model.logitsFromEmbeddings(this.model.encodeImages(pixels), this.classEmbeddings).logitsPerImage);
  }

  /** Top-k classes per image with their probabilities. Does not dispose `pixels`. */
  async classify(pixels: ImageInput, k = 1): Promise<ZeroShotPrediction[]> {
    const n = this.classNames.length;
    if (!Number.isSafeInteger(k) || k < 1 || k > n) {
      throw new ValueError(`ZeroShotClassifier.classify: k must be an integer in [1, ${n}], got ${k}`);
    }
    const { values, indices } = tf.tidy(() => tf.topk(this.probabilities === 'sigmoid' ? tf.sigmoid(this.logits(pixels)) : tf.softmax(this.logits(pixels)), k));
    try {
      const [p, idx] = await Promise.all([values.data(), indices.data()]);
      return Array.from({ length: pixels.shape[0] }, (_, i) => {
        const ids = Array.from(idx.subarray(i * k, (i + 1) * k));
        return {
          indices: ids,
          labels: ids.map((c) => this.classNames[c] as string),
          probabilities: Array.from(p.subarray(i * k, (i + 1) * k)),
        };
      });
    } finally {
      tf.dispose([values, indices]);
    }
  }

  /** Release the class embeddings (not the model). */
  dispose(): void {
    this.classEmbeddings.dispose();
  }
}
