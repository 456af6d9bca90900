import { checkTowerConfigAgainstWeights, ConfigError, parseSafetensors, urlDirectory, type FetchFn, type EncoderConfig, type TensorData } from '@clip-ts/core';
import { CLIPTextModel, parseCLIPTextConfig, type CLIPTextConfig } from './clip-text.js';
import { CLIPVisionModel, parseCLIPVisionConfig, type CLIPVisionConfig } from './clip-vision.js';
import { DistilBertModel, parseDistilBertConfig, type DistilBertConfig } from './distilbert.js';
import { parseResNetConfig, ResNetModel, type ResNetConfig } from './resnet.js';
import { parseViTConfig, ViTModel, type ViTConfig } from './vit.js';
import './tower-sizes.js'; // registers the size checks this loader runs

/**
 * Load Hugging Face ViT / ResNet / DistilBERT / CLIPVisionModel / CLIPTextModel checkpoints into towers from objects, bytes or a URL (browser-safe).
 * Checkpoint directories on disk (incl. sharded ones) are ./hf-load-dir.ts (`@clip-ts/encoders/node`).
 */

/**
 * Prefixes HF head models and CLIP put in front of the tower's own keys, by tower. HF's single CLIP tower
 * models (CLIPVisionModel / CLIPTextModel, and their *WithProjection variants) keep CLIPModel's
 * `vision_model.` / `text_model.` prefix.
 */
const PREFIXES = {
  vit: ['vit.', 'vision_model.'],
  resnet: ['resnet.'],
  distilbert: ['distilbert.', 'text_model.'],
  clip_vision_model: ['vision_model.'],
  clip_text_model: ['text_model.'],
} as const;
const MODEL_TYPES = Object.keys(PREFIXES) as Array<keyof typeof PREFIXES>;

export interface LoadEncoderOptions {
  /** Seed for dropout (weights come from the checkpoint). */
  seed?: number;
  /** ViT: 'cls' | 'pooler'; DistilBERT: 'cls' | 'mean'. Default 'cls'. */
  feature?: string;
  /** ViT: build the pooler. Default: when the checkpoint has one (or `feature` is 'pooler'). */
  pooler?: boolean;
}

export type LoadedEncoder =
  | { kind: 'image'; encoder: ViTModel; config: ViTConfig }
  | { kind: 'image'; encoder: ResNetModel; config: ResNetConfig }
  | { kind: 'text'; encoder: DistilBertModel; config: DistilBertConfig }
  | { kind: 'image'; encoder: CLIPVisionModel; config: CLIPVisionConfig }
  | { kind: 'text'; encoder: CLIPTextModel; config: CLIPTextConfig };

function stripPrefix(key: string, prefixes: readonly string[]): string {
  for (const p of prefixes) if (key.startsWith(p)) return key.slice(p.length);
  return key;
}

/** A validated tower config, ready for its weights (see prepareEncoder). */
export interface PreparedEncoder {
  /** Keys worth decoding (position_ids buffers are not). */
  keep(key: string): boolean;
  /** Build the tower and load `tensors` into it; `source` names the weights in errors. */
  load(tensors: ReadonlyMap<string, TensorData>, source: string): LoadedEncoder;
}

/**
 * Validate an HF config.json (`model_type` `vit` or `distilbert`) before any weight is read, and return
 * the loader for its weights. Keys may carry the HF head/CLIP prefix (`vit.`, `distilbert.`,
 * `vision_model.`, `text_model.`); keys the tower has no use for (classifier.*, vocab_*, position_ids
 * buffers, an unused pooler) are ignored. Errors: unknown model_type or invalid config → ConfigError
 * naming `configSource`; missing weights (all listed) or shape mismatches → CheckpointError.
 */
export function prepareEncoder(raw: unknown, configSource: string, options: LoadEncoderOptions = {}): PreparedEncoder {
  const type = (raw as { model_type?: unknown } | null)?.model_type;
  if (!MODEL_TYPES.includes(type as keyof typeof PREFIXES)) {
    const hint = type === 'clip' ? ' (a whole CLIPModel: use loadHFCLIPModel)' : '';
    throw new ConfigError(`${configSource}: unsupported model_type ${JSON.stringify(type)}${hint}; expected ${MODEL_TYPES.map((t) => `'${t}'`).join(', ')}`);
  }
  const prefixes = PREFIXES[type as keyof typeof PREFIXES];
  if (type === 'clip_vision_model' || type === 'clip_text_model') return prepareCLIPTower(type, raw, configSource, prefixes, options);
  if (type === 'resnet') return prepareResNet(raw, configSource, prefixes, options);
  const base: Record<string, unknown> = { ...(raw as EncoderConfig) };
  if (options.feature !== undefined) base.feature = options.feature;
  const textConfig = type === 'distilbert' ? parseDistilBertConfig(base, configSource) : undefined;
  if (type === 'vit') parseViTConfig(base, configSource);
  return {
    keep: (key) => !key.endsWith('position_ids'),
    load(tensors, source) {
      const weights = towerWeights(tensors, prefixes);
      // config.json is untrusted: its sizes must match the weights before the tower is built.
      checkTowerConfigAgainstWeights(base as EncoderConfig, weights, { source: configSource, weightsSource: source });
      const opts = { seed: options.seed, initialize: false };
      if (textConfig) {
        const encoder = withWeights(new DistilBertModel(textConfig, opts), weights, source);
        return { kind: 'text', encoder, config: encoder.config };
      }
      // The ViT pooler is built when the checkpoint has one (ViTModel) and not when it has none (ViTFor*).
      base.add_pooling_layer = options.pooler ?? (weights.has('pooler.dense.weight') || options.feature === 'pooler');
      const encoder = withWeights(new ViTModel(parseViTConfig(base, configSource), opts), weights, source);
      return { kind: 'image', encoder, config: encoder.config };
    },
  };
}

/** An HF ResNetModel (or ResNetForImageClassification: `resnet.` prefix, its classifier ignored). */
function prepareResNet(raw: unknown, configSource: string, prefixes: readonly string[], options: LoadEncoderOptions): PreparedEncoder {
  const config = parseResNetConfig(raw, configSource);
  return {
    keep: (key) => !key.startsWith('classifier.'),
    load(tensors, source) {
      const weights = towerWeights(tensors, prefixes);
      checkTowerConfigAgainstWeights(raw as EncoderConfig, weights, { source: configSource, weightsSource: source });
      const encoder = withWeights(new ResNetModel(config, { seed: options.seed, initialize: false }), weights, source);
      return { kind: 'image', encoder, config: encoder.config };
    },
  };
}

function towerWeights(tensors: ReadonlyMap<string, TensorData>, prefixes: readonly string[]): Map<string, TensorData> {
  const weights = new Map<string, TensorData>();
  for (const [key, t] of tensors) {
    const name = stripPrefix(key, prefixes);
    // An un-prefixed duplicate would be ambiguous; the prefixed (tower) key wins.
    if (!weights.has(name) || name !== key) weights.set(name, t);
  }
  return weights;
}

/**
 * An HF CLIPVisionModel / CLIPTextModel repo (or its *WithProjection variant, whose projection is not part
 * of the tower and is ignored). CLIP towers take no `feature` / `pooler` options: they always pool as HF does.
 */
function prepareCLIPTower(
  type: 'clip_vision_model' | 'clip_text_model',
  raw: unknown,
  configSource: string,
  prefixes: readonly string[],
  options: LoadEncoderOptions,
): PreparedEncoder {
  const vision = type === 'clip_vision_model' ? parseCLIPVisionConfig(raw, configSource) : undefined;
  const text = type === 'clip_text_model' ? parseCLIPTextConfig(raw, configSource) : undefined;
  const own = (key: string): boolean => prefixes.some((p) => key.startsWith(p));
  return {
    keep: (key) => own(key) && !key.endsWith('position_ids'),
    load(tensors, source) {
      const weights = towerWeights(tensors, prefixes);
      const opts = { seed: options.seed, initialize: false };
      if (vision) {
        const encoder = withWeights(new CLIPVisionModel(vision, opts), weights, source);
        return { kind: 'image', encoder, config: encoder.config };
      }
      const encoder = withWeights(new CLIPTextModel(text as CLIPTextConfig, opts), weights, source);
      return { kind: 'text', encoder, config: encoder.config };
    },
  };
}

/**
 * A tower from an HF config object and the bytes of its model.safetensors (e.g. fetched, or picked by the
 * user in a browser). The caller owns (and disposes) the encoder.
 */
export function loadEncoderFromBytes(
  config: unknown,
  weights: Uint8Array | ArrayBuffer,
  options: LoadEncoderOptions & { configSource?: string; weightsSource?: string } = {},
): LoadedEncoder {
  const { configSource = 'config.json', weightsSource = 'model.safetensors', ...rest } = options;
  const prepared = prepareEncoder(config, configSource, rest);
  const bytes = weights instanceof Uint8Array ? weights : new Uint8Array(weights);
  const { tensors } = parseSafetensors(bytes, weightsSource, { filter: prepared.keep });
  return prepared.load(tensors, weightsSource);
}

/**
 * A tower from an HF model directory served over HTTP(S): `<base>/config.json` and
 * `<base>/model.safetensors` (single-file checkpoints). Failed requests are CheckpointErrors naming the
 * URL. The caller owns (and disposes) the encoder.
 */
export async function loadEncoderFromUrl(
  base: string | URL,
  options: LoadEncoderOptions & { fetch?: FetchFn } = {},
): Promise<LoadedEncoder> {
  const { fetch, ...rest } = options;
  const { get } = urlDirectory(base, fetch);
  const config = await get('config.json');
  let json: unknown;
  try {
    json = JSON.parse(await config.res.text());
  } catch (err) {
    throw new ConfigError(`${config.url}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  const prepared = prepareEncoder(json, config.url, rest);
  const weights = await get('model.safetensors');
  const { tensors } = parseSafetensors(new Uint8Array(await weights.res.arrayBuffer()), weights.url, { filter: prepared.keep });
  return prepared.load(tensors, weights.url);
}

/** Load `weights` into a fresh tower, disposing it if they don't fit. */
function withWeights<E extends ViTModel | ResNetModel | DistilBertModel | CLIPVisionModel | CLIPTextModel>(encoder: E, weights: Map<string, TensorData>, source: string): E {
  try {
    encoder.loadStateDict(weights, source);
    return encoder;
  } catch (err) {
    encoder.dispose();
    throw err;
  }
}
