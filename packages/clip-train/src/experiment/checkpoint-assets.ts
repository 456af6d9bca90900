import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, CLIPModel, ConfigError } from '@clip-ts/core';
import { preprocessorConfigFor, type HFTokenizer, type ImageProcessorOptions } from '@clip-ts/encoders';
import { loadImageProcessor, loadTokenizer, type ClipImageProcessor } from '@clip-ts/encoders/node';
import { z } from 'zod';
import { loadModelDir } from './pretrained.js';

/**
 * A checkpoint directory a user can run on its own: `config.json` + `model.safetensors` (saveCLIPModel),
 * plus the text preprocessing (`tokenizer.json`, and `tokenizer_config.json` whose `model_max_length` is
 * the caption length the model was trained with) and the image preprocessing (`preprocessor_config.json`,
 * HF ViTImageProcessor keys).
 */
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const PREPROCESSOR_FILE = 'preprocessor_config.json';
/** The reference's caption length, used when a checkpoint does not say. */
export const DEFAULT_MAX_LENGTH = 40;

export interface CheckpointAssets {
  /** A Hugging Face tokenizer.json to copy next to the weights. */
  tokenizerFile: string;
  /** Caption length used in training (written as tokenizer_config.json `model_max_length`). */
  maxLength: number;
  /** The image processor's options (what preprocessor_config.json will rebuild). */
  imageProcessor: Readonly<ImageProcessorOptions>;
}

/**
 * Copy the tokenizer and write the preprocessing configs into `dir` (created if needed), next to what
 * `saveCLIPModel(model, dir)` writes. Idempotent; call it for every checkpoint directory a run produces.
 */
export async function saveCheckpointAssets(dir: string, assets: CheckpointAssets): Promise<void> {
  if (!Number.isInteger(assets.maxLength) || assets.maxLength < 2) {
    throw new ConfigError(`saveCheckpointAssets: maxLength must be an integer >= 2, got ${assets.maxLength}`);
  }
  try {
    await mkdir(dir, { recursive: true });
    await copyFile(assets.tokenizerFile, join(dir, TOKENIZER_FILE));
    await writeFile(join(dir, TOKENIZER_CONFIG_FILE), `${JSON.stringify({ model_max_length: assets.maxLength, do_lower_case: true }, null, 2)}\n`);
    await writeFile(join(dir, PREPROCESSOR_FILE), `${JSON.stringify(preprocessorConfigFor(assets.imageProcessor), null, 2)}\n`);
  } catch (err) {
    throw new CheckpointError(`${dir}: cannot write checkpoint assets: ${(err as Error).message}`, { cause: err });
  }
}

export interface LoadedCheckpoint {
  dir: string;
  /** The caller owns the model and disposes it. */
  model: CLIPModel;
  tokenizer: HFTokenizer;
  imageProcessor: ClipImageProcessor;
  maxLength: number;
}

const tokenizerConfigSchema = z.looseObject({ model_max_length: z.number().int().min(2).max(100_000).optional() });

async function readMaxLength(dir: string): Promise<number> {
  const file = join(dir, TOKENIZER_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return DEFAULT_MAX_LENGTH;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = tokenizerConfigSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(`${file}: model_max_length must be an integer >= 2`);
  // HF's own tokenizer configs say 512 (the tower's limit), not a training length: cap to the reference's.
  const m = parsed.data.model_max_length;
  return m === undefined || m >= 512 ? DEFAULT_MAX_LENGTH : m;
}

/**
 * Load a checkpoint directory with its tokenizer and image processor. A missing tokenizer.json is a
 * CheckpointError saying what to copy there; a missing preprocessor_config.json falls back to 224×224
 * with CLIP mean/std (the reference's preprocessing).
 */
export async function loadCheckpoint(dir: string, options: { maxLength?: number; seed?: number } = {}): Promise<LoadedCheckpoint> {
  try {
    await readFile(join(dir, TOKENIZER_FILE), { flag: 'r' }).then(() => undefined);
  } catch (err) {
    throw new CheckpointError(
      `${dir}: no ${TOKENIZER_FILE}; copy the text tower's tokenizer.json next to config.json (saveCheckpointAssets does this)`,
      { cause: err },
    );
  }
  const tokenizer = await loadTokenizer(dir);
  const imageProcessor = await loadImageProcessor(dir);
  const maxLength = options.maxLength ?? (await readMaxLength(dir));
  // Either layout: clip-ts, or HF CLIPModel (a fine-tuned pretrained CLIP's best/).
  const model = await loadModelDir(dir, options.seed === undefined ? {} : { seed: options.seed });
  return { dir, model, tokenizer, imageProcessor, maxLength };
}
