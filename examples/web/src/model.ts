/**
 * The page's model object: a thin local stand-in for `CLIP` from @clip-ts/encoders (being written in
 * parallel). It exposes the same calls (`embedImages`, `embedTexts`, `zeroShot`, `similarity`, `dispose`)
 * so swapping it for `CLIP.fromPretrained(url)` touches only this file and its import in main.ts.
 *
 * It loads the two checkpoint layouts a user can host: an HF CLIPModel repo (model_type `clip`, CLIP
 * tokenizer) and a clip-ts run checkpoint (model_type `clip-ts`, e.g. `clip demo`'s best/, BERT tokenizer
 * with `model_max_length` in tokenizer_config.json). Nothing here holds tensors beyond the model itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, CLIPModel, ConfigError, ValueError, clipLogits, l2Normalize, parseSafetensors, type TextInput } from '@clip-ts/core';
import {
  ClipPixelProcessor,
  buildHFCLIPModel,
  clipTokenizerFromJson,
  decodeBrowserImage,
  describeBrowserImage,
  isHFCLIPWeight,
  optionsFromPreprocessorConfig,
  parseHFCLIPConfig,
  toPixelTensor,
  toTensors,
  tokenizeCLIP,
  tokenizerFromJson,
  type BrowserImageInput,
} from '@clip-ts/encoders';

/** The caption length clip-ts checkpoints were trained with when tokenizer_config.json does not say. */
const DEFAULT_MAX_LENGTH = 40;
/** Images per forward pass: bounds peak memory on large photo sets. */
const IMAGE_BATCH = 8;

export interface LoadProgress {
  file: string;
  loaded: number;
  /** From Content-Length; undefined when the server does not send it. */
  total: number | undefined;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
}

/** L2-normalised embeddings, row-major [rows, dim]. Plain numbers: holds no tensors. */
export interface Embeddings {
  data: Float32Array;
  rows: number;
  dim: number;
}

export interface LabelScore {
  label: string;
  probability: number;
}

export interface ZeroShotOptions {
  /** Prompt templates with `{}` for the label; several are ensembled (mean of normalised embeddings). */
  templates?: readonly string[];
}

export const DEFAULT_TEMPLATES: readonly string[] = ['a photo of a {}.'];

async function fetchFile(root: string, file: string, options: LoadOptions, optional: boolean): Promise<Uint8Array | undefined> {
  const url = new URL(file, root).href;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new CheckpointError(`${url}: cannot fetch: ${(err as Error).message}`, { cause: err });
  }
  if (optional && res.status === 404) return undefined;
  if (!res.ok) throw new CheckpointError(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  const length = Number(res.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : undefined;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  // Streamed so the page can show download progress of the (large) weights.
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    options.onProgress?.({ file, loaded, total });
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function parseJson(bytes: Uint8Array, source: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch (err) {
    throw new ConfigError(`${source}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
}

export class BrowserCLIP {
  private disposed = false;

  private constructor(
    readonly model: CLIPModel,
    private readonly tokenize: (texts: readonly string[]) => TextInput,
    readonly processor: ClipPixelProcessor,
    /** The URL the checkpoint came from (for messages). */
    readonly source: string,
    readonly kind: 'clip' | 'clip-ts',
  ) {}

  /**
   * Load `<base>/config.json`, `model.safetensors`, the tokenizer files and `preprocessor_config.json`.
   * Failed requests → CheckpointError naming the URL; bad files → ConfigError / TokenizerError. The caller
   * owns the result and calls dispose().
   */
  static async fromUrl(base: string, options: LoadOptions = {}): Promise<BrowserCLIP> {
    const root = new URL(base.endsWith('/') ? base : `${base}/`, globalThis.location?.href).href;
    const get = async (file: string): Promise<Uint8Array> => (await fetchFile(root, file, options, false)) as Uint8Array;
    const getOptional = (file: string): Promise<Uint8Array | undefined> => fetchFile(root, file, options, true);
    const configJson = parseJson(await get('config.json'), `${root}config.json`);
    const modelType = (configJson as { model_type?: unknown }).model_type;
    const [weights, tokenizerBytes, tokenizerConfig, specialTokens, preprocessor] = await Promise.all([
      get('model.safetensors'),
      get('tokenizer.json'),
      getOptional('tokenizer_config.json'),
      getOptional('special_tokens_map.json'),
      getOptional('preprocessor_config.json'),
    ]);
    const processor = new ClipPixelProcessor(
      preprocessor ? optionsFromPreprocessorConfig(parseJson(preprocessor, `${root}preprocessor_config.json`), `${root}preprocessor_config.json`) : {},
    );
    const tokenizerText = new TextDecoder().decode(tokenizerBytes);
    const tokenizerConfigJson = tokenizerConfig ? parseJson(tokenizerConfig, `${root}tokenizer_config.json`) : undefined;
    if (modelType === 'clip') {
      const config = parseHFCLIPConfig(configJson, `${root}config.json`);
      const parsed = parseSafetensors(weights, `${root}model.safetensors`);
      const tensors = new Map([...parsed.tensors].filter(([k]) => isHFCLIPWeight(k)));
      const clipTok = clipTokenizerFromJson(
        {
          tokenizer: JSON.parse(tokenizerText) as unknown,
          tokenizerText,
          tokenizerConfig: tokenizerConfigJson,
          specialTokensMap: specialTokens ? parseJson(specialTokens, `${root}special_tokens_map.json`) : undefined,
        },
        root.replace(/\/$/, ''),
        config.text.max_position_embeddings,
      );
      const model = buildHFCLIPModel(config, tensors, `${root}model.safetensors`);
      return new BrowserCLIP(model, (texts) => tokenizeCLIP(clipTok, texts), processor, root, 'clip');
    }
    if (modelType === 'clip-ts') {
      const model = CLIPModel.fromBytes({ config: configJson as object, weights }, { configSource: `${root}config.json`, weightsSource: `${root}model.safetensors` });
      const tokenizer = tokenizerFromJson(tokenizerText, tokenizerConfigJson as object | undefined, { source: `${root}tokenizer.json` });
      const stated = (tokenizerConfigJson as { model_max_length?: unknown } | undefined)?.model_max_length;
      const maxLength = typeof stated === 'number' && Number.isInteger(stated) && stated >= 2 && stated < 100_000 ? stated : DEFAULT_MAX_LENGTH;
      return new BrowserCLIP(model, (texts) => toTensors(tokenizer.encode(texts, maxLength)), processor, root, 'clip-ts');
    }
    throw new ConfigError(`${root}config.json: model_type ${JSON.stringify(modelType)} is neither 'clip' (HF CLIPModel) nor 'clip-ts'`);
  }

  private check(): void {
    if (this.disposed) throw new ValueError('BrowserCLIP: used after dispose()');
  }

  /** Decode + preprocess one image exactly as Node does after decoding: CHW float32 (a new array). */
  async pixelValues(input: BrowserImageInput): Promise<Float32Array> {
    const img = await decodeBrowserImage(input);
    return this.processor.processRawSync(img.data, img.width, img.height, 3, describeBrowserImage(input));
  }

  /** L2-normalised image embeddings, one row per input, in order. Unreadable images → DataError naming the file. */
  async embedImages(inputs: readonly BrowserImageInput[], options: { onProgress?: (done: number, total: number) => void } = {}): Promise<Embeddings> {
    this.check();
    const dim = this.model.projectionDim;
    const out = new Float32Array(inputs.length * dim);
    for (let start = 0; start < inputs.length; start += IMAGE_BATCH) {
      const batch = inputs.slice(start, start + IMAGE_BATCH);
      const pixels = await Promise.all(batch.map((x) => this.pixelValues(x)));
      const emb = tf.tidy(() => {
        const t = toPixelTensor(pixels, this.processor.height, this.processor.width);
        return this.model.encodeImages(t);
      });
      try {
        out.set(await emb.data(), start * dim);
      } finally {
        emb.dispose();
      }
      options.onProgress?.(Math.min(start + IMAGE_BATCH, inputs.length), inputs.length);
    }
    return { data: out, rows: inputs.length, dim };
  }

  /** L2-normalised text embeddings; with templates, the class-prompt ensemble per text (CLIP's recipe). */
  async embedTexts(texts: readonly string[], options: ZeroShotOptions = {}): Promise<Embeddings> {
    this.check();
    if (texts.length === 0) throw new ValueError('embedTexts: no texts');
    const templates = options.templates ?? ['{}'];
    templates.forEach((t, i) => {
      if (!t.includes('{}')) throw new ValueError(`template ${i} ${JSON.stringify(t)} has no '{}' placeholder`);
    });
    const prompts = texts.flatMap((x) => templates.map((t) => t.replaceAll('{}', x)));
    const input = this.tokenize(prompts);
    const emb = tf.tidy(() => {
      const all = this.model.encodeTexts(input);
      const byText = tf.reshape(all, [texts.length, templates.length, -1]);
      return l2Normalize(tf.mean(byText, 1));
    });
    try {
      return { data: (await emb.data()) as Float32Array, rows: texts.length, dim: this.model.projectionDim };
    } finally {
      tf.dispose([emb, input.inputIds, input.attentionMask]);
    }
  }

  /** Scaled cosine logits [images × texts] = min(exp(logit_scale), 100) · cos, row-major. */
  private async logits(images: Embeddings, texts: Embeddings): Promise<Float32Array> {
    const t = tf.tidy(() => {
      const a = tf.tensor2d(images.data, [images.rows, images.dim]);
      const b = tf.tensor2d(texts.data, [texts.rows, texts.dim]);
      return clipLogits(a, b, this.model.logitScale).logitsPerImage;
    });
    try {
      return (await t.data()) as Float32Array;
    } finally {
      t.dispose();
    }
  }

  /**
   * Per image, every label with its probability (softmax over the labels of the scaled cosine), best
   * first. `images` may be inputs or embeddings from embedImages (the page embeds once, classifies often).
   */
  async zeroShot(images: readonly BrowserImageInput[] | Embeddings, labels: readonly string[], options: ZeroShotOptions = {}): Promise<LabelScore[][]> {
    this.check();
    if (labels.length === 0) throw new ValueError('zeroShot: the label list is empty');
    const emb = 'data' in images ? images : await this.embedImages(images);
    const classes = await this.embedTexts(labels, { templates: options.templates ?? DEFAULT_TEMPLATES });
    const logits = await this.logits(emb, classes);
    return Array.from({ length: emb.rows }, (_, i) => softmaxRow(logits.subarray(i * labels.length, (i + 1) * labels.length), labels));
  }

  /** [images × texts] scaled cosine similarity (the logits CLIP's softmax sees), row-major per image. */
  async similarity(images: readonly BrowserImageInput[] | Embeddings, texts: readonly string[]): Promise<number[][]> {
    this.check();
    const emb = 'data' in images ? images : await this.embedImages(images);
    const t = await this.embedTexts(texts);
    const logits = await this.logits(emb, t);
    return Array.from({ length: emb.rows }, (_, i) => Array.from(logits.subarray(i * texts.length, (i + 1) * texts.length)));
  }

  /** exp(logit_scale) as the model uses it (capped at 100). */
  get scale(): number {
    return Math.min(Math.exp((this.model.logitScale.dataSync() as Float32Array)[0] as number), 100);
  }

  dispose(): void {
    if (!this.disposed) this.model.dispose();
    this.disposed = true;
  }
}

function softmaxRow(row: Float32Array, labels: readonly string[]): LabelScore[] {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  const e = Array.from(row, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return labels.map((label, j) => ({ label, probability: (e[j] as number) / sum })).sort((a, b) => b.probability - a.probability);
}
