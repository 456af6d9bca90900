import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, ConfigError } from '@clip-ts/core';
import { preprocessorConfigFor, type ImageProcessorOptions } from '@clip-ts/encoders';

/**
 * A checkpoint directory a user can run on its own: `config.json` + `model.safetensors` (saveCLIPModel),
 * plus the text preprocessing (`tokenizer.json`, and `tokenizer_config.json` whose `model_max_length` is
 * the caption length the model was trained with) and the image preprocessing (`preprocessor_config.json`,
 * HF ViTImageProcessor keys). `CLIP.fromPretrained(dir)` (@clip-ts/encoders) reads it back.
 */
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const PREPROCESSOR_FILE = 'preprocessor_config.json';
/** The reference's caption length, used when a checkpoint does not say (the reader's constant). */
export { DEFAULT_MAX_LENGTH } from '@clip-ts/encoders';

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
