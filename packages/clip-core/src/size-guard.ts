import type { EncoderConfig } from './encoder.js';
import { ConfigError } from './errors.js';

/**
 * A downloaded checkpoint's config.json is untrusted input: `hidden_size: 1e9` or `num_hidden_layers:
 * 100000` would make the towers allocate gigabytes (or loop for minutes) before the weights are even read.
 * So every size in a config is checked against the weights file's header (names and shapes, read without
 * the data) before anything is allocated. Each tower type registers how its sizes show up in its weights.
 */

/** Sane upper bounds for tower config sizes (HF's largest vision/text towers are far below these). */
export const SIZE_BOUNDS = {
  /** hidden sizes, intermediate sizes, projection dims */
  width: 65_536,
  layers: 1_024,
  vocab: 2_097_152,
  positions: 131_072,
  imageSide: 16_384,
  channels: 64,
} as const;

/** A weight whose shape the config fixes: `keys` are the config keys that set it (named in errors). */
export interface ExpectedWeight {
  name: string;
  shape: readonly number[];
  keys: readonly string[];
}

/** What a tower config implies about its weights (names relative to the tower, no prefix). */
export interface TowerWeightSpec {
  /** Weights that must exist with exactly these shapes. */
  expected: ExpectedWeight[];
  /** A weight that must NOT exist (e.g. layer `n` when the config says `n` layers), and the key to blame. */
  absent?: Array<{ name: string; key: string; message: string }>;
}

/** Parses (validates, bounds) a raw tower config and lists what it implies; throws ConfigError on a bad one. */
export type TowerWeightSpecFn = (config: EncoderConfig, source: string) => TowerWeightSpec;

const specs = new Map<string, TowerWeightSpecFn>();

/** Register how a tower type's config sizes show up in its weights (vit and distilbert do it on import). */
export function registerTowerWeightSpec(modelType: string, fn: TowerWeightSpecFn): void {
  specs.set(modelType, fn);
}

/** Only names and shapes are needed: a safetensors header entry or a decoded tensor both fit. */
export type ShapeTable = ReadonlyMap<string, { shape: readonly number[] }>;

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Check tower `config` (at `configPath` in `source`, e.g. `vision_config`) against the weight shapes in
 * `weights` (keys `prefix` + the tower's names). Throws ConfigError naming the config key and the weight
 * before any tensor is built. A tower type without a registered spec is only bounds-checked by its factory.
 */
export function checkTowerConfigAgainstWeights(
  config: EncoderConfig,
  weights: ShapeTable,
  o: { source: string; weightsSource: string; configPath?: string; prefix?: string },
): void {
  const type = (config as { model_type?: unknown }).model_type;
  const fn = typeof type === 'string' ? specs.get(type) : undefined;
  if (!fn) return;
  const at = o.configPath ? `${o.configPath}.` : '';
  const prefix = o.prefix ?? '';
  const spec = fn(config, o.configPath ? `${o.source} (${o.configPath})` : o.source);
  for (const w of spec.expected) checkWeight(weights, { name: prefix + w.name, shape: w.shape, keys: w.keys.map((k) => `${at}${k}`) }, o);
  for (const a of spec.absent ?? []) {
    if (weights.has(prefix + a.name)) throw new ConfigError(`${o.source}: ${at}${a.key}: ${a.message} (${o.weightsSource} has ${prefix}${a.name})`);
  }
}

/**
 * CLIPModel.load's check: both tower configs (`vision_config`, `text_config`) against their prefixed weights,
 * and `projection_dim` (bounded, and equal to the heads' output size) — all before anything is built.
 * A config that is not an object is left to the schema (it fails there with its own message).
 */
export function checkClipConfigAgainstWeights(
  config: unknown,
  weights: ShapeTable,
  o: { source: string; weightsSource: string; prefixes: { vision: string; text: string; visualProjection: string; textProjection: string } },
): void {
  if (typeof config !== 'object' || config === null) return;
  const c = config as Record<string, unknown>;
  const tower = (key: 'vision_config' | 'text_config', prefix: string) => {
    const t = c[key];
    if (typeof t === 'object' && t !== null) checkTowerConfigAgainstWeights(t as EncoderConfig, weights, { source: o.source, weightsSource: o.weightsSource, configPath: key, prefix });
  };
  tower('vision_config', o.prefixes.vision);
  tower('text_config', o.prefixes.text);
  const p = c.projection_dim;
  // An invalid value is the schema's to report (CLIPModel.fromConfig), with the other keys' problems.
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > SIZE_BOUNDS.width) return;
  // Every head kind has one weight whose first dimension is projection_dim: HF's bias-free head is the
  // Linear itself ([proj, in]); the others end in a LayerNorm ([proj]).
  const weight = c.projection_head === 'linear-no-bias' ? 'weight' : 'layer_norm.weight';
  for (const prefix of [o.prefixes.visualProjection, o.prefixes.textProjection]) {
    const found = weights.get(`${prefix}${weight}`);
    const shape = weight === 'weight' && found && found.shape.length === 2 ? [p, found.shape[1] as number] : [p];
    checkWeight(weights, { name: `${prefix}${weight}`, shape, keys: ['projection_dim'] }, o);
  }
}

function checkWeight(weights: ShapeTable, w: ExpectedWeight, o: { source: string; weightsSource: string }): void {
  const found = weights.get(w.name);
  if (!found) throw new ConfigError(`${o.source}: ${w.keys.join(', ')} imply weight ${w.name} ${fmt(w.shape)}, which ${o.weightsSource} does not have`);
  if (found.shape.length !== w.shape.length || found.shape.some((d, i) => d !== w.shape[i])) {
    throw new ConfigError(
      `${o.source}: ${w.keys.join(', ')} do not match the weights in ${o.weightsSource}: ${w.name}: checkpoint has shape ${fmt(found.shape)}, the model expects ${fmt(w.shape)}`,
    );
  }
}
