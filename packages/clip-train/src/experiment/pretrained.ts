import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { CheckpointError, ConfigError, type CaptionTokenizer, type CLIPModel, type ImageProcessor } from '@clip-ts/core';
import { loadCLIPModel, saveCLIPModel } from '@clip-ts/core/node';
import { clipPreprocessorConfigFor, isHFCLIPModel } from '@clip-ts/encoders';
import {
  ClipImageProcessor,
  loadCLIPTokenizer,
  loadHFCLIPModel,
  loadImageProcessor,
  loadTokenizer,
  readJson,
  resolvePretrained,
  saveHFCLIPModel,
} from '@clip-ts/encoders/node';
import type { ExperimentConfig } from '../config/schema.js';

/**
 * A whole pretrained CLIP as a run's starting point (`model.pretrained`): resolving it (directory or Hub
 * id, with the Hub client's cache and offline rules), loading it (HF CLIPModel layout, or a clip-ts
 * checkpoint such as one of our runs' best/), its preprocessing, and saving a model in the layout it
 * came in (HF CLIP stays HF CLIP, so transformers and loadHFCLIPModel read the checkpoints).
 */

const checkpointError = (m: string, o?: { cause?: unknown }): CheckpointError => new CheckpointError(m, o);
const configError = (m: string, o?: { cause?: unknown }): ConfigError => new ConfigError(m, o);

/** The local directory of `model.pretrained` (downloaded into the Hub cache when it is an id). */
export async function pretrainedDir(idOrPath: string): Promise<string> {
  return resolvePretrained(idOrPath);
}

/**
 * Load a CLIP checkpoint directory by its config.json's model_type: `clip` (HF CLIPModel, e.g. a
 * fine-tuned pretrained CLIP's best/) or `clip-ts` (saveCLIPModel). The caller owns the model.
 */
export async function loadModelDir(dir: string, options: { seed?: number } = {}): Promise<CLIPModel> {
  return (await isHFCLIPDir(dir)) ? loadHFCLIPModel(dir, options) : loadCLIPModel(dir, options);
}

/** Save in the layout the model has a class for: HF CLIPModel for an HF CLIP, else clip-ts. */
export async function saveModelDir(model: CLIPModel, dir: string, assets?: HFCLIPAssets): Promise<void> {
  if (isHFCLIPModel(model)) await saveHFCLIPModel(model, dir, assets);
  else await saveCLIPModel(model, dir);
}

/** The data settings that override a pretrained CLIP's own preprocessing (none: its own files). */
export type PreprocessingOverrides = Partial<Pick<ExperimentConfig['data'], 'tokenizer' | 'imageProcessor' | 'imageSize' | 'imageDecoder'>>;

/** What an HF CLIP checkpoint carries besides weights: the tokenizer files and preprocessor_config.json. */
export interface HFCLIPAssets {
  tokenizerDir: string;
  preprocessorConfig: Record<string, unknown>;
}

/** The directory whose tokenizer files a run uses: data.tokenizer when given (a dir, or the dir of its tokenizer.json), else the pretrained repo. */
async function tokenizerDirOf(data: PreprocessingOverrides, repo: string): Promise<string> {
  if (data.tokenizer === undefined) return repo;
  const isDir = await stat(data.tokenizer).then(
    (s) => s.isDirectory(),
    () => undefined,
  );
  if (isDir === undefined) throw new ConfigError(`data.tokenizer: ${data.tokenizer} does not exist (give a tokenizer.json or a directory holding one)`);
  if (isDir) return data.tokenizer;
  if (path.basename(data.tokenizer) !== 'tokenizer.json') {
    throw new ConfigError(`data.tokenizer: with model.pretrained, give a directory or a file named tokenizer.json (its directory's tokenizer files are saved with the checkpoints), got ${data.tokenizer}`);
  }
  return path.dirname(data.tokenizer);
}

/** True when `dir`'s config.json is an HF CLIPModel's (`model_type: clip`), false for a clip-ts checkpoint. */
export async function isHFCLIPDir(dir: string): Promise<boolean> {
  const { value } = await readJson(path.join(dir, 'config.json'), { error: checkpointError, invalidError: configError });
  return (value as { model_type?: unknown } | null)?.model_type === 'clip';
}

/**
 * The tokenizer and image processor of a pretrained CLIP run: the repo's own unless data.tokenizer /
 * data.imageProcessor / data.imageSize override them. An HF CLIP's tokenizer is set up as CLIPTokenizer
 * (its pad token, from tokenizer_config / special_tokens_map); a clip-ts checkpoint's as CLIP.fromPretrained
 * does. `tokenizerDir` holds the tokenizer files the run's checkpoints carry; `hf` says which layout the
 * repo (and so the run's checkpoints) has.
 */
export async function pretrainedPreprocessing(
  data: PreprocessingOverrides,
  repo: string,
): Promise<{ tokenizer: CaptionTokenizer; imageProcessor: ClipImageProcessor; tokenizerDir: string; hf: boolean }> {
  const hf = await isHFCLIPDir(repo);
  const tokenizerDir = await tokenizerDirOf(data, repo);
  const tokenizer = hf ? (await loadCLIPTokenizer(tokenizerDir)).tokenizer : await loadTokenizer(tokenizerDir);
  const size = data.imageSize === undefined ? {} : { height: data.imageSize, width: data.imageSize };
  const decoder = data.imageDecoder === undefined ? {} : { decoder: data.imageDecoder };
  const imageProcessor = await loadImageProcessor(data.imageProcessor ?? repo, { ...size, ...decoder });
  return { tokenizer, imageProcessor, tokenizerDir, hf };
}

/** The assets every checkpoint of a pretrained CLIP run carries (so best/ and last/ are complete HF repos). */
export function pretrainedAssets(tokenizerDir: string, imageProcessor: ImageProcessor): HFCLIPAssets {
  const options = imageProcessor instanceof ClipImageProcessor ? imageProcessor.options : { height: imageProcessor.height, width: imageProcessor.width };
  return { tokenizerDir, preprocessorConfig: clipPreprocessorConfigFor(options) };
}
