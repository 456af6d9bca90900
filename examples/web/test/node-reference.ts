/**
 * What the Node API computes for a checkpoint directory and image files: the numbers the page must show.
 * Independent of the page's code path: sharp decoding (ClipImageProcessor), the directory loaders, and
 * core's ZeroShotClassifier.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ZeroShotClassifier, type CLIPModel, type TextInput } from '@clip-ts/core';
import { loadCLIPModel } from '@clip-ts/core/node';
import { toPixelTensor, toTensors, tokenizeCLIP } from '@clip-ts/encoders';
import { loadCLIPTokenizer, loadHFCLIPModel, loadImageProcessor, loadTokenizer, type ClipImageProcessor } from '@clip-ts/encoders/node';

export interface NodeModel {
  model: CLIPModel;
  tokenize: (texts: string[]) => TextInput;
  processor: ClipImageProcessor;
  dispose(): void;
}

/** Load an HF CLIP repo dir (model_type clip) or a clip-ts checkpoint dir. The caller disposes it. */
export async function loadNodeModel(dir: string): Promise<NodeModel> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { model_type: string };
  const processor = await loadImageProcessor(dir);
  if (config.model_type === 'clip') {
    const model = await loadHFCLIPModel(dir);
    const tok = await loadCLIPTokenizer(dir);
    return { model, processor, tokenize: (t) => tokenizeCLIP(tok, t), dispose: () => model.dispose() };
  }
  const model = await loadCLIPModel(dir);
  const tok = await loadTokenizer(dir);
  const cfg = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as { model_max_length: number };
  return { model, processor, tokenize: (t) => toTensors(tok.encode(t, cfg.model_max_length)), dispose: () => model.dispose() };
}

export interface Reference {
  /** Per image (by file name): every label with its probability, best first. */
  labels: Map<string, { label: string; probability: number }[]>;
  /** Images by similarity to the query, best first; score = min(exp(logit_scale), 100) · cos. */
  ranking: { name: string; score: number }[];
  /** [images, dim] normalised image embeddings, in `files` order. */
  imageEmbeddings: Float32Array;
  /** min(exp(logit_scale), 100). */
  scale: number;
}

export async function nodeReference(m: NodeModel, files: readonly string[], labels: string[], template: string, query: string): Promise<Reference> {
  const pixels = await Promise.all(files.map((f) => m.processor.processFile(f)));
  const input = toPixelTensor(pixels, m.processor.height, m.processor.width);
  const classifier = ZeroShotClassifier.create(m.model, m.tokenize, labels, [template]);
  const q = m.tokenize([query]);
  try {
    const [probs, sims, emb] = tf.tidy(() => {
      const img = m.model.encodeImages(input);
      const scale = tf.minimum(tf.exp(m.model.logitScale), 100);
      const text = m.model.encodeTexts(q);
      return [tf.softmax(classifier.logits(input)), tf.mul(tf.matMul(img, text, false, true), scale), img];
    });
    const [p, s, e, ls] = await Promise.all([probs.data(), sims.data(), emb.data(), m.model.logitScale.data()]);
    tf.dispose([probs, sims, emb]);
    const names = files.map((f) => basename(f));
    return {
      labels: new Map(
        names.map((name, i) => [
          name,
          labels.map((label, j) => ({ label, probability: p[i * labels.length + j] as number })).sort((a, b) => b.probability - a.probability),
        ]),
      ),
      ranking: names.map((name, i) => ({ name, score: s[i] as number })).sort((a, b) => b.score - a.score),
      imageEmbeddings: e as Float32Array,
      scale: Math.min(Math.exp(ls[0] as number), 100),
    };
  } finally {
    classifier.dispose();
    tf.dispose([input, q.inputIds, q.attentionMask]);
  }
}
