import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, type CLIPModel } from '@clip-ts/core';
import { writeFilesAtomic, type AtomicFile } from '@clip-ts/core/node';
import { hfCLIPToBytes, type HFCLIPBytesOptions } from './clip-hf-save.js';
import { exists } from './files.js';

/** Writing an HF CLIPModel repo directory (Node). */

/** The tokenizer files of an HF CLIP repo, copied as they are when present. */
export const CLIP_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'] as const;

export interface SaveHFCLIPOptions extends HFCLIPBytesOptions {
  /** A directory whose tokenizer files (CLIP_TOKENIZER_FILES; tokenizer.json required) are copied along. */
  tokenizerDir?: string;
  /** preprocessor_config.json to write (e.g. clipPreprocessorConfigFor(processor.options), or the repo's own). */
  preprocessorConfig?: Record<string, unknown>;
}

/**
 * Save `model` (an HF CLIP, see isHFCLIPModel) into `dir` in transformers' CLIPModel layout: config.json,
 * model.safetensors, and the tokenizer files / preprocessor_config.json given in `options`, so that
 * `CLIPModel.from_pretrained(dir)` and loadHFCLIPModel(dir) read it. Every file is serialised first and
 * then replaced as one unit (writeFilesAtomic): a failure leaves the previous checkpoint as it was.
 * The model keeps ownership of its weights.
 */
export async function saveHFCLIPModel(model: CLIPModel, dir: string, options: SaveHFCLIPOptions = {}): Promise<void> {
  const { tokenizerDir, preprocessorConfig, ...bytesOptions } = options;
  const { config, weights } = await hfCLIPToBytes(model, bytesOptions);
  const files: AtomicFile[] = [
    { path: join(dir, 'model.safetensors'), data: weights },
    { path: join(dir, 'config.json'), data: config },
  ];
  if (tokenizerDir !== undefined) {
    if (!(await exists(join(tokenizerDir, 'tokenizer.json')))) {
      throw new CheckpointError(`saveHFCLIPModel: tokenizerDir ${tokenizerDir} has no tokenizer.json`);
    }
    for (const name of CLIP_TOKENIZER_FILES) {
      const from = join(tokenizerDir, name);
      if (await exists(from)) files.push({ path: join(dir, name), data: await readFile(from) });
    }
  }
  if (preprocessorConfig !== undefined) {
    files.push({ path: join(dir, 'preprocessor_config.json'), data: `${JSON.stringify(preprocessorConfig, null, 2)}\n` });
  }
  try {
    await mkdir(dir, { recursive: true });
    await writeFilesAtomic(files);
  } catch (err) {
    throw new CheckpointError(`${dir}: cannot save HF CLIP checkpoint: ${(err as Error).message}`, { cause: err });
  }
}
