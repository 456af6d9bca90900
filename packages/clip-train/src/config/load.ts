import { readFile } from 'node:fs/promises';
import { ConfigError, formatZodIssues } from '@clip-ts/core';
import { parse as parseYaml } from 'yaml';
import { ExperimentConfigSchema, type ExperimentConfig } from './schema.js';

/** Validate a config object; every problem is listed with its path (`optim.lr: ...`). */
export function parseExperimentConfig(raw: unknown, source = 'config'): ExperimentConfig {
  const r = ExperimentConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${source}: invalid experiment config:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

/** Read a JSON or YAML file (by extension; YAML is a superset of JSON, so anything else parses as YAML). */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read config: ${(err as Error).message}`, { cause: err });
  }
  try {
    return file.endsWith('.json') ? (JSON.parse(text) as unknown) : (parseYaml(text) as unknown);
  } catch (err) {
    throw new ConfigError(`${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Apply `--set a.b.c=value` overrides to a raw config (before validation). The value is parsed as YAML,
 * so `3`, `1e-4`, `true`, `[1, 5]` and `{a: 1}` get their types and anything else stays a string.
 * Intermediate objects are created as needed; a path through a non-object is an error.
 */
export function applyOverrides(raw: unknown, overrides: readonly string[]): unknown {
  const root: Record<string, unknown> = isObject(raw) ? structuredClone(raw) : {};
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${o}: expected key.path=value`);
    const keys = o.slice(0, eq).split('.');
    if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype')) {
      throw new ConfigError(`--set ${o}: invalid key path '${o.slice(0, eq)}'`);
    }
    let value: unknown;
    try {
      value = parseYaml(o.slice(eq + 1)) as unknown;
    } catch {
      value = o.slice(eq + 1);
    }
    let node: Record<string, unknown> = root;
    keys.slice(0, -1).forEach((k, i) => {
      const next = node[k];
      if (next === undefined) node[k] = {};
      else if (!isObject(next)) throw new ConfigError(`--set ${o}: '${keys.slice(0, i + 1).join('.')}' is not an object`);
      node = node[k] as Record<string, unknown>;
    });
    node[keys[keys.length - 1] as string] = value;
  }
  return root;
}

/** Read, override and validate: what `clip train --config FILE --set ...` does. */
export async function loadExperimentConfig(file: string, overrides: readonly string[] = []): Promise<ExperimentConfig> {
  return parseExperimentConfig(applyOverrides(await readConfigFile(file), overrides), file);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
