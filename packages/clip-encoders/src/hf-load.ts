import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import {
  CheckpointError,
  checkTowerConfigAgainstWeights,
  ConfigError,
  formatZodIssues,
  readSafetensors,
  type EncoderConfig,
  type TensorData,
} from '@clip-ts/core';
import { DistilBertModel, parseDistilBertConfig, type DistilBertConfig } from './distilbert.js';
import { parseViTConfig, ViTModel, type ViTConfig } from './vit.js';
import './tower-sizes.js'; // registers the size checks this loader runs

/**
 * Load a Hugging Face checkpoint directory (config.json + model.safetensors, or a sharded
 * model.safetensors.index.json) into a ViT or DistilBERT tower.
 */

/** Prefixes HF head models and CLIP put in front of the tower's own keys, by tower. */
const PREFIXES = { vit: ['vit.', 'vision_model.'], distilbert: ['distilbert.', 'text_model.'] } as const;

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
  | { kind: 'text'; encoder: DistilBertModel; config: DistilBertConfig };

const IndexSchema = z.looseObject({ weight_map: z.record(z.string(), z.string()) });

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`${file}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

/**
 * Every tensor of the checkpoint in `dir` that `keep` accepts (keys as stored), decoded to float32/int32,
 * and a description of the files for error messages. Shards are read one at a time.
 */
export async function readCheckpointTensors(
  dir: string,
  keep: (key: string) => boolean = () => true,
): Promise<{ tensors: Map<string, TensorData>; source: string }> {
  const single = path.join(dir, 'model.safetensors');
  if (await exists(single)) return { tensors: (await readSafetensors(single, { filter: keep })).tensors, source: single };
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!(await exists(indexFile))) {
    const bin = (await exists(path.join(dir, 'pytorch_model.bin'))) ? ' (pytorch_model.bin is not supported: convert it to safetensors)' : '';
    throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json${bin}`);
  }
  const parsed = IndexSchema.safeParse(await readJson(indexFile));
  if (!parsed.success) throw new ConfigError(`${indexFile}: invalid index:\n${formatZodIssues(parsed.error.issues)}`);
  const byShard = new Map<string, string[]>();
  for (const [key, shard] of Object.entries(parsed.data.weight_map)) {
    if (!keep(key)) continue;
    if (path.basename(shard) !== shard) throw new CheckpointError(`${indexFile}: weight_map.${key}: shard '${shard}' must be a file name in ${dir}`);
    byShard.set(shard, [...(byShard.get(shard) ?? []), key]);
  }
  const tensors = new Map<string, TensorData>();
  for (const [shard, keys] of byShard) {
    const file = path.join(dir, shard);
    if (!(await exists(file))) throw new CheckpointError(`${indexFile}: shard ${shard} (holding ${keys[0]}${keys.length > 1 ? ` and ${keys.length - 1} more` : ''}) does not exist`);
    const wanted = new Set(keys);
    const read = await readSafetensors(file, { filter: (k) => wanted.has(k) });
    for (const key of keys) {
      const t = read.tensors.get(key);
      if (!t) throw new CheckpointError(`${file}: does not hold ${key}, which ${indexFile} maps to it`);
      tensors.set(key, t);
    }
  }
  return { tensors, source: indexFile };
}

function stripPrefix(key: string, prefixes: readonly string[]): string {
  for (const p of prefixes) if (key.startsWith(p)) return key.slice(p.length);
  return key;
}

/**
 * Build the tower named by config.json's `model_type` (`vit` or `distilbert`) and load its weights.
 * Keys may carry the HF head/CLIP prefix (`vit.`, `distilbert.`, `vision_model.`, `text_model.`);
 * keys the tower has no use for (classifier.*, vocab_*, position_ids buffers, an unused pooler) are
 * ignored. Errors: unknown model_type or invalid config → ConfigError naming config.json; missing
 * weights (all listed) or shape mismatches → CheckpointError. The caller owns (and disposes) the encoder.
 */
export async function loadEncoderFromDir(dir: string, options: LoadEncoderOptions = {}): Promise<LoadedEncoder> {
  const configFile = path.join(dir, 'config.json');
  const raw = await readJson(configFile);
  const type = (raw as { model_type?: unknown } | null)?.model_type;
  if (type !== 'vit' && type !== 'distilbert') {
    throw new ConfigError(`${configFile}: unsupported model_type ${JSON.stringify(type)}; expected 'vit' or 'distilbert'`);
  }
  const base: Record<string, unknown> = { ...(raw as EncoderConfig) };
  if (options.feature !== undefined) base.feature = options.feature;
  // Validate the config before reading (possibly GBs of) weights.
  const textConfig = type === 'distilbert' ? parseDistilBertConfig(base, configFile) : undefined;
  if (type === 'vit') parseViTConfig(base, configFile);
  const prefixes = PREFIXES[type];
  const { tensors, source } = await readCheckpointTensors(dir, (key) => !key.endsWith('position_ids'));
  const weights = new Map<string, TensorData>();
  for (const [key, t] of tensors) {
    const name = stripPrefix(key, prefixes);
    // An un-prefixed duplicate would be ambiguous; the prefixed (tower) key wins.
    if (!weights.has(name) || name !== key) weights.set(name, t);
  }
  // config.json is untrusted: its sizes must match the weights before the tower is built.
  checkTowerConfigAgainstWeights(base as EncoderConfig, weights, { source: configFile, weightsSource: source });
  const opts = { seed: options.seed, initialize: false };
  if (textConfig) {
    const encoder = withWeights(new DistilBertModel(textConfig, opts), weights, source);
    return { kind: 'text', encoder, config: encoder.config };
  }
  // The ViT pooler is built when the checkpoint has one (ViTModel) and not when it has none (ViTFor*).
  base.add_pooling_layer = options.pooler ?? (weights.has('pooler.dense.weight') || options.feature === 'pooler');
  const encoder = withWeights(new ViTModel(parseViTConfig(base, configFile), opts), weights, source);
  return { kind: 'image', encoder, config: encoder.config };
}

/** Load `weights` into a fresh tower, disposing it if they don't fit. */
function withWeights<E extends ViTModel | DistilBertModel>(encoder: E, weights: Map<string, TensorData>, source: string): E {
  try {
    encoder.loadStateDict(weights, source);
    return encoder;
  } catch (err) {
    encoder.dispose();
    throw err;
  }
}
