import { z } from 'zod';
import { CheckpointError, CLIPModel, ConfigError, formatZodIssues, type TensorData } from '@clip-ts/core';
import { isHFCLIPWeight, parseHFCLIPConfig, buildHFCLIPModel } from './clip-hf.js';
import { clipTokenizerFromJson, type CLIPTokenizer } from './clip-tokenizer.js';
import type { ResolveOptions } from './hub.js';
import { optionsFromPreprocessorConfig, type ImageProcessorOptions } from './image-processor.js';

/**
 * Reading a whole CLIP checkpoint (model + tokenizer + image-processor options) from any place that can
 * hand over its files: a directory, a Hub snapshot, a URL base. Browser-safe: the places are in
 * ./platform and ./clip-url-files.ts.
 */

/** The files of one checkpoint, wherever they are. */
export interface CheckpointFiles {
  /** The directory or URL base, for messages. */
  readonly name: string;
  /** The text of `file`, or undefined when the checkpoint has no such file. */
  text(file: string): Promise<string | undefined>;
  /** The weights (model.safetensors, or its shards) that `keep` accepts, and their file name for messages. */
  tensors(keep: (key: string) => boolean): Promise<{ tensors: ReadonlyMap<string, TensorData>; source: string }>;
}

/** A download's progress (bytes of one file). */
export interface DownloadProgress {
  file: string;
  loaded: number;
  /** From Content-Length; undefined when the server does not say. */
  total: number | undefined;
}

export interface CLIPLoadOptions extends ResolveOptions {
  /** Seed for dropout (every weight comes from the checkpoint). */
  seed?: number;
  /** The fetch used for URL sources (default globalThis.fetch), e.g. one that adds auth headers. */
  fetch?: (url: string) => Promise<Response>;
  /** Bytes received per file, for URL sources. */
  onDownloadProgress?: (progress: DownloadProgress) => void;
  /**
   * Image processor options over the checkpoint's preprocessor_config.json, e.g. `{ decoder: 'sharp' }`
   * for JPEG pixels identical to Pillow's (the default libjpeg-turbo decode is a few grey levels off).
   */
  imageProcessor?: ImageProcessorOptions;
}

/** What a checkpoint is: HF's CLIPModel layout, or clip-ts's own (saveCLIPModel + the trainer's assets). */
export type CLIPCheckpointKind = 'clip' | 'clip-ts';

export interface CLIPCheckpointParts {
  kind: CLIPCheckpointKind;
  /** The caller owns (and disposes) the model. */
  model: CLIPModel;
  tokenizer: CLIPTokenizer;
  imageProcessor: ImageProcessorOptions;
}

/** The caption length of clip-ts checkpoints that do not state one (the reference's). */
export const DEFAULT_MAX_LENGTH = 40;

const kindSchema = z.looseObject({ model_type: z.string() });
const clipTsTokenizerConfigSchema = z.looseObject({ model_max_length: z.number().int().min(2).max(100_000).optional() });

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A clip-ts checkpoint's caption length: tokenizer_config.json `model_max_length`. HF's own tokenizer
 * configs say 512 (the tower's limit), not a training length, so 512 and above mean "not stated" → 40.
 */
export function clipTsMaxLength(tokenizerConfig: unknown, file: string): number {
  if (tokenizerConfig === undefined) return DEFAULT_MAX_LENGTH;
  const parsed = clipTsTokenizerConfigSchema.safeParse(tokenizerConfig);
  if (!parsed.success) throw new ConfigError(`${file}: model_max_length must be an integer >= 2:\n${formatZodIssues(parsed.error.issues)}`);
  const m = parsed.data.model_max_length;
  return m === undefined || m >= 512 ? DEFAULT_MAX_LENGTH : m;
}

/**
 * Read config.json (which decides the kind), the tokenizer files and preprocessor_config.json, then the
 * weights, so a bad config or a missing tokenizer fails before (possibly GBs of) weights are read.
 * The caller owns (and disposes) the returned model.
 */
export async function loadCLIPParts(files: CheckpointFiles, options: { seed?: number } = {}): Promise<CLIPCheckpointParts> {
  const at = (file: string): string => `${files.name.replace(/\/$/, '')}/${file}`;
  const json = async (file: string): Promise<unknown> => {
    const text = await files.text(file);
    return text === undefined ? undefined : parseJson(text, at(file));
  };
  const configText = await files.text('config.json');
  if (configText === undefined) throw new CheckpointError(`${files.name}: not a checkpoint: it has no config.json`);
  const config = parseJson(configText, at('config.json'));
  const kindParsed = kindSchema.safeParse(config);
  const kind = kindParsed.success ? kindParsed.data.model_type : undefined;
  if (kind !== 'clip' && kind !== 'clip-ts') {
    throw new ConfigError(
      `${at('config.json')}: model_type ${JSON.stringify(kind)} is not a whole CLIP model; CLIP.fromPretrained loads ` +
        "HF CLIPModel checkpoints (model_type 'clip') and clip-ts checkpoints (model_type 'clip-ts'). Load single towers with fromPretrained from @clip-ts/encoders/node.",
    );
  }
  const hf = kind === 'clip' ? parseHFCLIPConfig(config, at('config.json')) : undefined;

  const tokenizerText = await files.text('tokenizer.json');
  if (tokenizerText === undefined) {
    throw new CheckpointError(
      `${files.name}: no tokenizer.json; ${kind === 'clip' ? 'use a repo revision that has the fast tokenizer (tokenizer.json)' : "copy the text tower's tokenizer.json next to config.json (saveCheckpointAssets does this)"}`,
    );
  }
  const tokenizerConfig = await json('tokenizer_config.json');
  const specialTokensMap = await json('special_tokens_map.json');
  const tokFiles = { tokenizer: parseJson(tokenizerText, at('tokenizer.json')), tokenizerText, tokenizerConfig, specialTokensMap };
  const tokenizer = hf
    ? clipTokenizerFromJson(tokFiles, files.name, hf.text.max_position_embeddings)
    : { ...clipTokenizerFromJson(tokFiles, files.name), maxLength: clipTsMaxLength(tokenizerConfig, at('tokenizer_config.json')) };

  const preprocessor = await json('preprocessor_config.json');
  // Without preprocessor_config.json: 224×224, CLIP mean/std (the reference's preprocessing).
  const imageProcessor = preprocessor === undefined ? {} : optionsFromPreprocessorConfig(preprocessor, at('preprocessor_config.json'));

  if (hf) {
    const { tensors, source } = await files.tensors(isHFCLIPWeight);
    return { kind, model: buildHFCLIPModel(hf, tensors, source, options), tokenizer, imageProcessor };
  }
  const model = CLIPModel.fromConfig(config, { ...options, source: at('config.json') });
  try {
    const { tensors, source } = await files.tensors(() => true);
    model.loadStateDict(tensors, source);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { kind, model, tokenizer, imageProcessor };
}
