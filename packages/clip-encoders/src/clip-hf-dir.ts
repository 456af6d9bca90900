import * as path from 'node:path';
import { CheckpointError, ConfigError, type CLIPModel } from '@clip-ts/core';
import { buildHFCLIPModel, isHFCLIPWeight, parseHFCLIPConfig, type LoadHFCLIPOptions } from './clip-hf.js';
import { exists, readJson } from './files.js';
import { readCheckpointTensors } from './hf-load-dir.js';

/** Loading an HF CLIPModel repo directory (Node). */

const checkpointError = (m: string, o?: { cause?: unknown }): CheckpointError => new CheckpointError(m, o);
const configError = (m: string, o?: { cause?: unknown }): ConfigError => new ConfigError(m, o);

/** A repo that has only PyTorch pickles gets an error that says what to do instead. */
export async function refusePickleOnly(dir: string): Promise<void> {
  const has = async (f: string): Promise<boolean> => exists(path.join(dir, f));
  if ((await has('model.safetensors')) || (await has('model.safetensors.index.json'))) return;
  const pickle = (await has('pytorch_model.bin')) ? 'pytorch_model.bin' : (await has('pytorch_model.bin.index.json')) ? 'pytorch_model.bin.index.json' : undefined;
  if (!pickle) return; // readCheckpointTensors reports the missing files
  throw new CheckpointError(
    `${dir}: has only ${pickle}, a PyTorch pickle, which clip-ts does not load (unpickling can run arbitrary code). ` +
      'Use a revision of the repo that has model.safetensors (on the Hub, often the "refs/pr/N" safetensors conversion), ' +
      'or convert it: python -c "from transformers import CLIPModel; CLIPModel.from_pretrained(\'DIR\').save_pretrained(\'OUT\', safe_serialization=True)"',
  );
}

/**
 * Build a CLIPModel from an HF CLIPModel repo dir (model.safetensors single or sharded, F32/F16/BF16). The
 * config is validated before any weight is read; a repo with only pytorch_model.bin → CheckpointError.
 * The caller owns (and disposes) the model.
 */
export async function loadHFCLIPModel(dir: string, options: LoadHFCLIPOptions = {}): Promise<CLIPModel> {
  const configFile = path.join(dir, 'config.json');
  const { value } = await readJson(configFile, { error: checkpointError, invalidError: configError });
  const config = parseHFCLIPConfig(value, configFile);
  await refusePickleOnly(dir);
  const { tensors, source } = await readCheckpointTensors(dir, isHFCLIPWeight);
  return buildHFCLIPModel(config, tensors, source, options);
}
