/**
 * Reading the JSON files of a model directory (Node only): config.json, tokenizer.json,
 * preprocessor_config.json, model.safetensors.index.json. One place for the read → parse → validate
 * steps and their error messages, so every loader names the file the same way.
 */
import { stat, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { formatZodIssues, type ClipError } from '@clip-ts/core';
import { z } from 'zod';

/** Builds the ClipError subclass a caller reports with (CheckpointError, TokenizerError, HubError…). */
export type ErrorFactory = (message: string, options?: { cause?: unknown }) => ClipError;

export interface ReadJsonOptions<T> {
  /** Validates the parsed value; failures list the zod issues. Without it the value is `unknown`. */
  schema?: z.ZodType<T>;
  /** What the file is, for the validation message (`invalid <what>`). Default 'contents'. */
  what?: string;
  /** A missing file (ENOENT) gives undefined instead of an error. */
  optional?: boolean;
  /** The error type for every failure; a second factory may report parse/validation failures differently. */
  error: ErrorFactory;
  invalidError?: ErrorFactory;
}

export interface JsonFile<T> {
  value: T;
  /** The file's text as read (e.g. for fingerprints). */
  text: string;
}

/**
 * Read, parse and (optionally) validate a JSON file. Errors: `<file>: cannot read: …`,
 * `<file>: invalid JSON: …`, `<file>: invalid <what>:\n<issues>`.
 */
export async function readJson<T = unknown>(file: string, options: ReadJsonOptions<T> & { optional: true }): Promise<JsonFile<T> | undefined>;
export async function readJson<T = unknown>(file: string, options: ReadJsonOptions<T>): Promise<JsonFile<T>>;
export async function readJson<T = unknown>(file: string, options: ReadJsonOptions<T>): Promise<JsonFile<T> | undefined> {
  const invalid = options.invalidError ?? options.error;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (options.optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw options.error(`${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalid(`${file}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!options.schema) return { value: json as T, text };
  const parsed = options.schema.safeParse(json);
  if (!parsed.success) throw invalid(`${file}: invalid ${options.what ?? 'contents'}:\n${formatZodIssues(parsed.error.issues)}`);
  return { value: parsed.data, text };
}

/** True when `file` exists and is a regular file (a directory of that name does not count). */
export async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** HF's model.safetensors.index.json: which shard file holds each weight. */
export const ShardIndexSchema = z.looseObject({ weight_map: z.record(z.string(), z.string()) });
export type ShardIndex = z.infer<typeof ShardIndexSchema>;

/**
 * Read a shard index and check that every shard is a plain file name (no path: an index must not point
 * outside its directory). Returns the weight map and the distinct shards in first-seen order.
 */
export async function readShardIndex(
  indexFile: string,
  error: ErrorFactory,
  invalidError: ErrorFactory = error,
): Promise<{ weightMap: Record<string, string>; shards: string[] }> {
  const { value } = await readJson(indexFile, { schema: ShardIndexSchema, what: 'index', error, invalidError });
  for (const [key, shard] of Object.entries(value.weight_map)) {
    if (basename(shard) !== shard || shard === '..' || shard.includes('\\')) {
      throw error(`${indexFile}: weight_map.${key}: shard '${shard}' must be a file name in the index's directory`);
    }
  }
  return { weightMap: value.weight_map, shards: [...new Set(Object.values(value.weight_map))] };
}
