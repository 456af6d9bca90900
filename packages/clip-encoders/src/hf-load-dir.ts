import * as path from 'node:path';
import { CheckpointError, ConfigError, type TensorData } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { exists, readJson, readShardIndex } from './files.js';
import { prepareEncoder, type LoadEncoderOptions, type LoadedEncoder } from './hf-load.js';

/**
 * Load a Hugging Face checkpoint directory (config.json + model.safetensors, or a sharded
 * model.safetensors.index.json) into a ViT or DistilBERT tower (Node).
 */

const checkpointError = (m: string, o?: { cause?: unknown }): CheckpointError => new CheckpointError(m, o);
const configError = (m: string, o?: { cause?: unknown }): ConfigError => new ConfigError(m, o);

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
  const { weightMap } = await readShardIndex(indexFile, checkpointError, configError);
  const byShard = new Map<string, string[]>();
  for (const [key, shard] of Object.entries(weightMap)) {
    if (!keep(key)) continue;
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

/**
 * Build the tower named by config.json's `model_type` (`vit` or `distilbert`) and load its weights from
 * `dir` (see prepareEncoder for the rules). The config is validated before (possibly GBs of) weights are
 * read. The caller owns (and disposes) the encoder.
 */
export async function loadEncoderFromDir(dir: string, options: LoadEncoderOptions = {}): Promise<LoadedEncoder> {
  const configFile = path.join(dir, 'config.json');
  const { value } = await readJson(configFile, { error: checkpointError, invalidError: configError });
  const prepared = prepareEncoder(value, configFile, options);
  const { tensors, source } = await readCheckpointTensors(dir, prepared.keep);
  return prepared.load(tensors, source);
}
