import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFilesAtomic } from './atomic.js';
import { CLIPModel, CONFIG_FILE, WEIGHTS_FILE, type LoadOptions } from './clip-model.js';
import { CheckpointError, ConfigError, SafetensorsError } from './errors.js';

/** CLIPModel checkpoint directories on disk (Node): `config.json` + `model.safetensors`. */

/**
 * Write `config.json` and `model.safetensors` of `model` into `dir` (created if needed). Everything is
 * serialised in memory first, then both files go to temp files that are synced and only then renamed over
 * the old ones: a failure at any point before the renames leaves the previous checkpoint byte-identical.
 */
export async function saveCLIPModel(model: CLIPModel, dir: string, metadata: Record<string, string> = {}): Promise<void> {
  const { config, weights } = await model.toBytes(metadata, join(dir, WEIGHTS_FILE));
  try {
    await mkdir(dir, { recursive: true });
    await writeFilesAtomic([
      { path: join(dir, WEIGHTS_FILE), data: weights },
      { path: join(dir, CONFIG_FILE), data: config },
    ]);
  } catch (err) {
    throw new CheckpointError(`${dir}: cannot save checkpoint: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Rebuild a model saved by saveCLIPModel (see CLIPModel.fromBytes). A missing file, a config that fails
 * validation, or missing / mis-shaped weights throw CheckpointError / ConfigError naming the file and key.
 * The caller owns (and disposes) the model.
 */
export async function loadCLIPModel(dir: string, options: LoadOptions = {}): Promise<CLIPModel> {
  const configPath = join(dir, CONFIG_FILE);
  const weightsPath = join(dir, WEIGHTS_FILE);
  for (const file of [configPath, weightsPath]) {
    try {
      await access(file);
    } catch (err) {
      throw new CheckpointError(`${dir}: not a clip-ts checkpoint: ${file} is missing`, { cause: err });
    }
  }
  let config: string;
  try {
    config = await readFile(configPath, 'utf8');
  } catch (err) {
    throw new ConfigError(`${configPath}: cannot parse: ${(err as Error).message}`, { cause: err });
  }
  let weights: Uint8Array;
  try {
    weights = await readFile(weightsPath);
  } catch (err) {
    throw new SafetensorsError(`${weightsPath}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  return CLIPModel.fromBytes({ config, weights }, { ...options, configSource: configPath, weightsSource: weightsPath });
}
