import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
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

async function readJson(file: string, required: boolean): Promise<{ text: string; value: unknown } | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TokenizerError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return { text, value: JSON.parse(text) as unknown };
  } catch (err) {
    throw new TokenizerError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new TokenizerError(`${file}: invalid:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

/**
 * Load `dir`'s tokenizer.json (required), tokenizer_config.json and special_tokens_map.json (optional).
 * `defaultMaxLength` (e.g. the text tower's max_position_embeddings) applies when the config sets none.
 * Holds no tensors.
 */
export async function loadCLIPTokenizer(dir: string, defaultMaxLength = 77): Promise<CLIPTokenizer> {
  const tokFile = join(dir, 'tokenizer.json');
  const cfgFile = join(dir, 'tokenizer_config.json');
  const mapFile = join(dir, 'special_tokens_map.json');
  const tok = await readJson(tokFile, true);
  const cfgJson = await readJson(cfgFile, false);
  const cfg = parse(tokenizerConfigSchema, cfgJson?.value, cfgFile);
  const map = parse(specialTokensMapSchema, (await readJson(mapFile, false))?.value, mapFile);
  // HF lets special_tokens_map.json supply what tokenizer_config.json leaves out.
  const merged = cfg.pad_token == null && map.pad_token != null ? { ...cfg, pad_token: map.pad_token } : cfgJson?.value;
  const tokenizer = new HFTokenizer(tok?.value, merged, tokFile, { rawText: tok?.text });
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
