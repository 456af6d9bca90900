import { z } from 'zod';
import { formatZodIssues, ValueError, type TextInput } from '@clip-ts/core';
import { TokenizerError } from './errors.js';
import { HFTokenizer, toTensors } from './tokenizer.js';

/**
 * The tokenizer of an HF CLIP repo as `CLIPTokenizer(Fast)` sets it up: tokenizer.json through HFTokenizer,
 * the pad token from tokenizer_config.json or else special_tokens_map.json (CLIP pads with <|endoftext|>,
 * 49407), and the maximum length from tokenizer_config's `model_max_length` (77).
 */

const specialToken = z.union([z.string(), z.looseObject({ content: z.string() })]).nullish();
const tokenizerConfigSchema = z.looseObject({ pad_token: specialToken, model_max_length: z.number().positive().optional() });
const specialTokensMapSchema = z.looseObject({ pad_token: specialToken });

/** transformers writes int(1e30) as model_max_length when a repo sets none. */
const UNSET_MAX_LENGTH = 1e15;

export interface CLIPTokenizer {
  tokenizer: HFTokenizer;
  /** tokenizer_config `model_max_length`, else `defaultMaxLength`. */
  maxLength: number;
}

function parse<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new TokenizerError(`${file}: invalid:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

/** The JSON files of an HF CLIP repo's tokenizer, parsed (tokenizer.json required, the others optional). */
export interface CLIPTokenizerFiles {
  tokenizer: unknown;
  /** tokenizer.json's text as read, for the tokenizer's fingerprint. */
  tokenizerText?: string;
  tokenizerConfig?: unknown;
  specialTokensMap?: unknown;
}

/**
 * A CLIPTokenizer from the repo's parsed files; `source` names the repo (dir or URL) in errors.
 * `defaultMaxLength` (e.g. the text tower's max_position_embeddings) applies when the config sets none.
 * Holds no tensors.
 */
export function clipTokenizerFromJson(files: CLIPTokenizerFiles, source: string, defaultMaxLength = 77): CLIPTokenizer {
  const cfgFile = `${source}/tokenizer_config.json`;
  const cfg = parse(tokenizerConfigSchema, files.tokenizerConfig, cfgFile);
  const map = parse(specialTokensMapSchema, files.specialTokensMap, `${source}/special_tokens_map.json`);
  // HF lets special_tokens_map.json supply what tokenizer_config.json leaves out.
  const merged = cfg.pad_token == null && map.pad_token != null ? { ...cfg, pad_token: map.pad_token } : files.tokenizerConfig;
  const tokenizer = new HFTokenizer(files.tokenizer, merged, `${source}/tokenizer.json`, { rawText: files.tokenizerText });
  const stated = cfg.model_max_length;
  const maxLength = stated !== undefined && stated < UNSET_MAX_LENGTH ? stated : defaultMaxLength;
  if (!Number.isInteger(maxLength)) throw new TokenizerError(`${cfgFile}: model_max_length must be an integer, got ${maxLength}`);
  return { tokenizer, maxLength };
}

export interface CLIPTokenizeOptions {
  /** 'longest': pad to the longest caption of the batch (HF padding=True); 'max_length' (default): to maxLength. */
  padding?: 'longest' | 'max_length';
  /** Truncation length (the EOS is kept); default the tokenizer's maxLength. */
  maxLength?: number;
}

/**
 * `tokenizer(texts, padding=..., truncation=True, max_length=...)` as tensors int32 [batch, seq], right
 * padded with the pad token. The caller owns (and disposes) the returned tensors.
 */
export function tokenizeCLIP(clip: CLIPTokenizer, texts: readonly string[], options: CLIPTokenizeOptions = {}): TextInput {
  if (texts.length === 0) throw new ValueError('tokenizeCLIP: no texts');
  const maxLength = options.maxLength ?? clip.maxLength;
  const length =
    options.padding === 'longest' ? Math.min(maxLength, Math.max(...clip.tokenizer.tokenLengths(texts))) : maxLength;
  return toTensors(clip.tokenizer.encode(texts, length));
}
