import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import {
  createImageEncoder,
  createTextEncoder,
  type EncodeOptions,
  type EncoderConfig,
  type ImageEncoder,
  type ImageInput,
  type NamedVariable,
  type TensorData,
  type TextEncoder,
  type TextInput,
} from './encoder.js';
import { CheckpointError, ClipError, ConfigError, formatZodIssues } from './errors.js';
import { clipLogits, clipLoss, l2Normalize, type ClipLogits, type LossOptions } from './loss.js';
import { SIGLIP_LOGIT_BIAS_INIT, SIGLIP_LOGIT_SCALE_INIT, siglipLogits, siglipLoss } from './siglip-loss.js';
import { PROJECTION_HEAD_KINDS, ProjectionHead, type ProjectionHeadKind } from './projection-head.js';
import { Rng } from './rng.js';
import { parseSafetensors, parseSafetensorsHeader, serializeSafetensors, type WritableTensor } from './safetensors.js';
import { checkClipConfigAgainstWeights, SIZE_BOUNDS } from './size-guard.js';
import { loadParams } from './state-dict.js';
import { urlDirectory, type FetchFn } from './url-files.js';

/**
 * A dual-encoder CLIP model: image tower → visual_projection, text tower → text_projection, and a learnable
 * log temperature `logit_scale`. Embeddings are L2-normalised; logits and loss are in loss.ts.
 *
 * Weight names (namedVariables, stateDict, model.safetensors) follow HF's VisionTextDualEncoder:
 * `vision_model.<tower key>`, `text_model.<tower key>`, `visual_projection.<head key>`,
 * `text_projection.<head key>`, `logit_scale` (0-d), and for a SigLIP model (`loss_type: 'siglip'` in
 * config.json) `logit_bias` (0-d). See docs/checkpoints.md.
 *
 * Everything here works on bytes and objects, so it runs in a browser too: `toBytes` / `fromBytes` /
 * `fromUrl`. Checkpoint directories on disk are `saveCLIPModel` / `loadCLIPModel` in `@clip-ts/core/node`.
 */

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const MODEL_TYPE = 'clip-ts';
export const DEFAULT_LOGIT_SCALE_INIT = Math.log(1 / 0.07);

/** The training objective, which also fixes how scores become probabilities (softmax / sigmoid). */
export const LOSS_TYPES = ['clip', 'siglip'] as const;
export type LossType = (typeof LOSS_TYPES)[number];

const towerConfig = z.looseObject({ model_type: z.string().min(1) });

/** config.json of a checkpoint (HF VisionTextDualEncoder layout). */
export const CLIPModelConfigSchema = z.looseObject({
  model_type: z.literal(MODEL_TYPE),
  projection_dim: z.number().int().positive().max(SIZE_BOUNDS.width),
  projection_head: z.enum(PROJECTION_HEAD_KINDS).default('linear'),
  head_dropout: z.number().min(0).lt(1).default(0.1),
  logit_scale_init_value: z.number().finite().default(DEFAULT_LOGIT_SCALE_INIT),
  // Absent (every CLIP checkpoint): 'clip'. A SigLIP model also stores its bias's init value.
  loss_type: z.enum(LOSS_TYPES).optional(),
  logit_bias_init_value: z.number().finite().optional(),
  vision_config: towerConfig,
  text_config: towerConfig,
});
export type CLIPModelConfig = z.infer<typeof CLIPModelConfigSchema>;

export interface CLIPModelOptions {
  /** Owned by the model from now on (disposed by model.dispose()). */
  imageEncoder: ImageEncoder;
  textEncoder: TextEncoder;
  projectionDim?: number;
  head?: ProjectionHeadKind;
  /** Dropout of the mlp head. */
  dropout?: number;
  /** 'clip' (softmax cross-entropy, the default) or 'siglip' (pairwise sigmoid; adds the `logit_bias` weight). */
  loss?: LossType;
  /** Initial LOG temperature (CLIP: ln(1/0.07); SigLIP: ln 10). */
  logitScaleInit?: number;
  /** Initial bias of a SigLIP model (−10). */
  logitBiasInit?: number;
  /** Seeds the heads' initialisation and dropout. */
  seed?: number;
  /** Custom heads (owned by the model); their input dims must match the towers and their output dims agree. */
  visualProjection?: ProjectionHead;
  textProjection?: ProjectionHead;
}

export interface CLIPBatch {
  pixelValues: ImageInput;
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
}

export interface LoadOptions {
  /** Seed for the (then overwritten) initial weights and for dropout. */
  seed?: number;
}

/** A checkpoint in memory: the text of config.json and the bytes of model.safetensors. */
export interface CLIPCheckpointBytes {
  config: string;
  weights: Uint8Array;
}

export interface FromBytesOptions extends LoadOptions {
  /** Names config.json in errors (a path or URL). Default 'config.json'. */
  configSource?: string;
  /** Names model.safetensors in errors. Default 'model.safetensors'. */
  weightsSource?: string;
}

export interface FromUrlOptions extends LoadOptions {
  /** The fetch to use (default: globalThis.fetch), e.g. one that adds auth headers. */
  fetch?: FetchFn;
}

const PREFIX = {
  vision: 'vision_model.',
  text: 'text_model.',
  visualProjection: 'visual_projection.',
  textProjection: 'text_projection.',
} as const;
const LOGIT_SCALE = 'logit_scale';
const LOGIT_BIAS = 'logit_bias';

export class CLIPModel {
  readonly imageEncoder: ImageEncoder;
  readonly textEncoder: TextEncoder;
  readonly visualProjection: ProjectionHead;
  readonly textProjection: ProjectionHead;
  /** The LOG temperature; logits are scaled by min(exp(logitScale), 100). */
  readonly logitScale: tf.Variable;
  /** SigLIP models only: the additive logit bias. */
  readonly logitBias: tf.Variable | undefined;
  readonly lossType: LossType;
  readonly projectionDim: number;
  private readonly logitScaleInit: number;
  private readonly logitBiasInit: number;

  constructor(options: CLIPModelOptions) {
    const {
      imageEncoder,
      textEncoder,
      projectionDim = 256,
      head = 'linear',
      dropout = 0.1,
      loss = 'clip',
      logitScaleInit = loss === 'siglip' ? SIGLIP_LOGIT_SCALE_INIT : DEFAULT_LOGIT_SCALE_INIT,
      logitBiasInit = SIGLIP_LOGIT_BIAS_INIT,
      seed = 0,
    } = options;
    if (!Number.isFinite(logitScaleInit)) throw new ConfigError(`CLIPModel: logitScaleInit must be finite, got ${logitScaleInit}`);
    if (!Number.isFinite(logitBiasInit)) throw new ConfigError(`CLIPModel: logitBiasInit must be finite, got ${logitBiasInit}`);
    if (!(LOSS_TYPES as readonly string[]).includes(loss)) throw new ConfigError(`CLIPModel: loss must be one of ${LOSS_TYPES.join(', ')}, got ${String(loss)}`);
    const rng = new Rng(seed);
    const makeHead = (inputDim: number): ProjectionHead =>
      new ProjectionHead({ inputDim, projectionDim, kind: head, dropout, seed: rng.nextSeed() });
    const visual = options.visualProjection ?? makeHead(imageEncoder.hiddenSize);
    const text = options.textProjection ?? makeHead(textEncoder.hiddenSize);
    const mismatch =
      visual.inputDim !== imageEncoder.hiddenSize
        ? `visual_projection takes ${visual.inputDim} features but the image tower outputs ${imageEncoder.hiddenSize}`
        : text.inputDim !== textEncoder.hiddenSize
          ? `text_projection takes ${text.inputDim} features but the text tower outputs ${textEncoder.hiddenSize}`
          : visual.projectionDim !== text.projectionDim
            ? `projection dims disagree: visual_projection → ${visual.projectionDim}, text_projection → ${text.projectionDim}`
            : undefined;
    if (mismatch) {
      // Dispose only the heads we built; the caller keeps what it passed in when construction fails.
      if (!options.visualProjection) visual.dispose();
      if (!options.textProjection) text.dispose();
      throw new ConfigError(`CLIPModel: ${mismatch}`);
    }
    this.imageEncoder = imageEncoder;
    this.textEncoder = textEncoder;
    this.visualProjection = visual;
    this.textProjection = text;
    this.projectionDim = visual.projectionDim;
    this.logitScaleInit = logitScaleInit;
    this.logitScale = tf.tidy(() => tf.variable(tf.scalar(logitScaleInit)));
    this.lossType = loss;
    this.logitBiasInit = logitBiasInit;
    this.logitBias = loss === 'siglip' ? tf.tidy(() => tf.variable(tf.scalar(logitBiasInit))) : undefined;
  }

  /** How zero-shot scores become probabilities: a softmax over classes (CLIP) or a sigmoid per class (SigLIP). */
  get probabilities(): 'softmax' | 'sigmoid' {
    return this.lossType === 'siglip' ? 'sigmoid' : 'softmax';
  }

  /** Build towers through the encoder registry (fresh weights) and the heads from `config`. */
  static fromConfig(config: unknown, options: LoadOptions & { source?: string } = {}): CLIPModel {
    const source = options.source ?? 'CLIPModel config';
    const parsed = CLIPModelConfigSchema.safeParse(config);
    if (!parsed.success) throw new ConfigError(`${source}: invalid CLIP config:\n${formatZodIssues(parsed.error.issues)}`);
    const c = parsed.data;
    const rng = new Rng(options.seed ?? 0);
    const withSource = <T>(what: string, build: () => T): T => {
      try {
        return build();
      } catch (err) {
        if (err instanceof ClipError && !(err instanceof ConfigError)) throw err;
        throw new ConfigError(`${source}: ${what}: ${(err as Error).message}`, { cause: err });
      }
    };
    const imageEncoder = withSource('vision_config', () =>
      createImageEncoder(c.vision_config as EncoderConfig, { seed: rng.nextSeed() }),
    );
    let textEncoder: TextEncoder | undefined;
    try {
      textEncoder = withSource('text_config', () => createTextEncoder(c.text_config as EncoderConfig, { seed: rng.nextSeed() }));
      return new CLIPModel({
        imageEncoder,
        textEncoder,
        projectionDim: c.projection_dim,
        head: c.projection_head,
        dropout: c.head_dropout,
        loss: c.loss_type ?? 'clip',
        logitScaleInit: c.logit_scale_init_value,
        logitBiasInit: c.logit_bias_init_value ?? SIGLIP_LOGIT_BIAS_INIT,
        seed: rng.nextSeed(),
      });
    } catch (err) {
      imageEncoder.dispose();
      textEncoder?.dispose();
      throw err;
    }
  }

  /** [B, projectionDim] L2-normalised image embeddings. Caller owns the result. */
  encodeImages(pixels: ImageInput, options: EncodeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => l2Normalize(this.projectImages(pixels, options)));
  }

  /** [B, projectionDim] L2-normalised text embeddings. Caller owns the result. */
  encodeTexts(text: TextInput, options: EncodeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => l2Normalize(this.projectTexts(text, options)));
  }

  /** Normalised embeddings from precomputed image-tower features [B, hidden] (frozen-feature cache). */
  projectImageFeatures(features: tf.Tensor2D, options: EncodeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => l2Normalize(this.visualProjection.apply(features, options)));
  }

  /** Normalised embeddings from precomputed text-tower features [B, hidden]. */
  projectTextFeatures(features: tf.Tensor2D, options: EncodeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => l2Normalize(this.textProjection.apply(features, options)));
  }

  private projectImages(pixels: ImageInput, options: EncodeOptions): tf.Tensor2D {
    return tf.tidy(() => this.visualProjection.apply(this.imageEncoder.encode(pixels, options), options));
  }

  private projectTexts(text: TextInput, options: EncodeOptions): tf.Tensor2D {
    return tf.tidy(() => this.textProjection.apply(this.textEncoder.encode(text, options), options));
  }

  /**
   * Logits between every image and every text (eval mode): scaled cosines, plus the bias for a SigLIP
   * model (as HF's SiglipModel). Caller owns both tensors.
   */
  logits(images: ImageInput, texts: TextInput): ClipLogits {
    return tf.tidy(() => this.logitsFromEmbeddings(this.projectImages(images, {}), this.projectTexts(texts, {})));
  }

  /** `logits` from embeddings (normalised or not). Caller owns both tensors. */
  logitsFromEmbeddings(imageEmbeds: tf.Tensor2D, textEmbeds: tf.Tensor2D): ClipLogits {
    return tf.tidy(() => {
      if (!this.logitBias) return clipLogits(imageEmbeds, textEmbeds, this.logitScale);
      const logitsPerImage = siglipLogits(imageEmbeds, textEmbeds, this.logitScale, this.logitBias);
      return { logitsPerImage, logitsPerText: tf.transpose(logitsPerImage) };
    });
  }

  /**
   * The model's loss (CLIP or SigLIP, see `lossType`) of a batch of pairs, with `positives` when the batch
   * has several per row. Caller owns the scalar; does not sync.
   */
  loss(batch: CLIPBatch, options: EncodeOptions & LossOptions = {}): tf.Scalar {
    const { positives, ...encode } = options;
    return tf.tidy(() =>
      this.lossOf(
        this.projectImages(batch.pixelValues, encode),
        this.projectTexts({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }, encode),
        positives,
      ),
    );
  }

  /** The loss from precomputed tower features (frozen towers): only the heads, the scale (and bias) train. */
  lossFromFeatures(imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D, options: EncodeOptions & LossOptions = {}): tf.Scalar {
    const { positives, ...encode } = options;
    return tf.tidy(() =>
      this.lossOf(this.visualProjection.apply(imageFeatures, encode), this.textProjection.apply(textFeatures, encode), positives),
    );
  }

  private lossOf(imageEmbeds: tf.Tensor2D, textEmbeds: tf.Tensor2D, positives: tf.Tensor2D | undefined): tf.Scalar {
    const options = positives ? { positives } : {};
    return this.logitBias
      ? siglipLoss(imageEmbeds, textEmbeds, this.logitScale, this.logitBias, options)
      : clipLoss(imageEmbeds, textEmbeds, this.logitScale, options);
  }

  /** Every weight with its checkpoint name (see the class comment), towers first. */
  namedVariables(): NamedVariable[] {
    const prefixed = (prefix: string, vars: NamedVariable[]): NamedVariable[] =>
      vars.map((v) => ({ ...v, name: prefix + v.name }));
    return [
      ...prefixed(PREFIX.vision, this.imageEncoder.namedVariables()),
      ...prefixed(PREFIX.text, this.textEncoder.namedVariables()),
      ...prefixed(PREFIX.visualProjection, this.visualProjection.namedVariables()),
      ...prefixed(PREFIX.textProjection, this.textProjection.namedVariables()),
      { name: LOGIT_SCALE, variable: this.logitScale, noDecay: true },
      ...(this.logitBias ? [{ name: LOGIT_BIAS, variable: this.logitBias, noDecay: true }] : []),
    ];
  }

  /** What the optimiser updates now: unfrozen tower weights, both heads, the scale. */
  trainableVariables(): tf.Variable[] {
    return [
      ...this.imageEncoder.trainableVariables(),
      ...this.textEncoder.trainableVariables(),
      ...this.visualProjection.trainableVariables(),
      ...this.textProjection.trainableVariables(),
      ...(this.logitScale.trainable ? [this.logitScale] : []),
      ...(this.logitBias?.trainable ? [this.logitBias] : []),
    ];
  }

  /** JSON config that CLIPModel.fromConfig / fromBytes rebuild this model from. */
  getConfig(): CLIPModelConfig {
    return {
      model_type: MODEL_TYPE,
      projection_dim: this.projectionDim,
      projection_head: this.visualProjection.kind,
      head_dropout: this.visualProjection.dropout,
      logit_scale_init_value: this.logitScaleInit,
      // CLIP models keep the config.json they always had; the loss keys appear only for SigLIP.
      ...(this.logitBias ? { loss_type: this.lossType, logit_bias_init_value: this.logitBiasInit } : {}),
      vision_config: this.imageEncoder.getConfig(),
      text_config: this.textEncoder.getConfig(),
    };
  }

  /** Every weight in PyTorch layout under its checkpoint name. Caller owns the tensors. */
  stateDict(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    const add = (prefix: string, m: Map<string, tf.Tensor>): void => {
      for (const [k, t] of m) out.set(prefix + k, t);
    };
    add(PREFIX.vision, this.imageEncoder.stateDict());
    add(PREFIX.text, this.textEncoder.stateDict());
    add(PREFIX.visualProjection, this.visualProjection.stateDict());
    add(PREFIX.textProjection, this.textProjection.stateDict());
    out.set(LOGIT_SCALE, tf.clone(this.logitScale));
    if (this.logitBias) out.set(LOGIT_BIAS, tf.clone(this.logitBias));
    return out;
  }

  /**
   * The checkpoint as bytes: config.json text and model.safetensors bytes (`metadata` goes into the
   * safetensors header). Nothing is written anywhere; `source` names the weights in errors.
   */
  async toBytes(metadata: Record<string, string> = {}, source: string = WEIGHTS_FILE): Promise<CLIPCheckpointBytes> {
    const state = this.stateDict();
    const tensors = new Map<string, WritableTensor>();
    try {
      for (const [name, t] of state) {
        // int32 state (BatchNorm's num_batches_tracked) is written as PyTorch stores it: int64.
        if (t.dtype === 'int32') {
          tensors.set(name, { dtype: 'I64', shape: [...t.shape], data: (await t.data()) as Int32Array });
          continue;
        }
        if (t.dtype !== 'float32') throw new CheckpointError(`${source}: '${name}' has dtype ${t.dtype}, expected float32`);
        tensors.set(name, { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array });
      }
    } finally {
      tf.dispose([...state.values()]);
    }
    const weights = serializeSafetensors(tensors, { format: 'pt', ...metadata });
    return { config: `${JSON.stringify(this.getConfig(), null, 2)}\n`, weights };
  }

  /**
   * Rebuild a model from checkpoint bytes (see toBytes): towers come from the encoder registry
   * (`vision_config.model_type`), then every weight is loaded. `config` may be the JSON text or the parsed
   * object. A config that fails validation, or missing / mis-shaped weights, throw ConfigError /
   * CheckpointError / SafetensorsError naming configSource / weightsSource and the key.
   */
  static fromBytes(
    checkpoint: { config: string | object; weights: Uint8Array | ArrayBuffer },
    options: FromBytesOptions = {},
  ): CLIPModel {
    const { configSource = CONFIG_FILE, weightsSource = WEIGHTS_FILE, ...loadOptions } = options;
    let json: unknown = checkpoint.config;
    if (typeof json === 'string') {
      try {
        json = JSON.parse(json);
      } catch (err) {
        throw new ConfigError(`${configSource}: cannot parse: ${(err as Error).message}`, { cause: err });
      }
    }
    const bytes = checkpoint.weights instanceof Uint8Array ? checkpoint.weights : new Uint8Array(checkpoint.weights);
    // config.json is untrusted: its sizes must match the weights' header before any tower is built.
    checkClipConfigAgainstWeights(json, parseSafetensorsHeader(bytes, weightsSource).tensors, { source: configSource, weightsSource, prefixes: PREFIX });
    const model = CLIPModel.fromConfig(json, { ...loadOptions, source: configSource });
    try {
      model.loadStateDict(parseSafetensors(bytes, weightsSource).tensors, weightsSource);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return model;
  }

  /**
   * Load a checkpoint served over HTTP(S): `<base>/config.json` and `<base>/model.safetensors`, e.g. a
   * directory saved by saveCLIPModel and put on a static server. Failed requests are CheckpointErrors
   * naming the URL and status.
   */
  static async fromUrl(base: string | URL, options: FromUrlOptions = {}): Promise<CLIPModel> {
    const { fetch, ...loadOptions } = options;
    const { get } = urlDirectory(base, fetch);
    const config = await get(CONFIG_FILE);
    const configText = await config.res.text();
    const weights = await get(WEIGHTS_FILE);
    const weightBytes = new Uint8Array(await weights.res.arrayBuffer());
    return CLIPModel.fromBytes(
      { config: configText, weights: weightBytes },
      { ...loadOptions, configSource: config.url, weightsSource: weights.url },
    );
  }

  /**
   * Load checkpoint-named, PyTorch-layout weights (see namedVariables). Errors name `source` and the key;
   * each part (tower, head) checks all its keys before assigning, but after an error in a later part the
   * earlier parts hold the new weights (fromBytes discards such a model).
   */
  loadStateDict(weights: ReadonlyMap<string, TensorData>, source: string): void {
    const sub = (prefix: string): Map<string, TensorData> => {
      const out = new Map<string, TensorData>();
      for (const [k, v] of weights) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
      return out;
    };
    // Check the scale before touching any weight, so a file without it fails before a partial load.
    const scalar = (key: string): TensorData => {
      const t = weights.get(key);
      if (!t) throw new CheckpointError(`${source}: missing weights: ${key}${key === LOGIT_BIAS ? ' (a SigLIP model, loss_type: siglip)' : ''}`);
      if (t.data.length !== 1) throw new CheckpointError(`${source}: '${key}' has shape [${t.shape.join(', ')}], expected a scalar`);
      return t;
    };
    const scale = scalar(LOGIT_SCALE);
    const bias = this.logitBias ? scalar(LOGIT_BIAS) : undefined;
    if (!this.logitBias && weights.has(LOGIT_BIAS)) {
      throw new CheckpointError(`${source}: has '${LOGIT_BIAS}' (a SigLIP model) but the config's loss_type is clip`);
    }
    this.imageEncoder.loadStateDict(sub(PREFIX.vision), `${source} (${PREFIX.vision}*)`);
    this.textEncoder.loadStateDict(sub(PREFIX.text), `${source} (${PREFIX.text}*)`);
    this.visualProjection.loadStateDict(sub(PREFIX.visualProjection), `${source} (${PREFIX.visualProjection}*)`);
    this.textProjection.loadStateDict(sub(PREFIX.textProjection), `${source} (${PREFIX.textProjection}*)`);
    // Stored 0-d like HF's; [1] (older writers) is accepted too.
    loadParams([{ key: LOGIT_SCALE, variable: this.logitScale, layout: 'same' }], new Map([[LOGIT_SCALE, { ...scale, shape: [] }]]), source);
    if (this.logitBias && bias) loadParams([{ key: LOGIT_BIAS, variable: this.logitBias, layout: 'same' }], new Map([[LOGIT_BIAS, { ...bias, shape: [] }]]), source);
  }

  /** Release every weight (towers, heads, scale). The model is unusable afterwards. */
  dispose(): void {
    this.imageEncoder.dispose();
    this.textEncoder.dispose();
    this.visualProjection.dispose();
    this.textProjection.dispose();
    this.logitScale.dispose();
    this.logitBias?.dispose();
  }
}
