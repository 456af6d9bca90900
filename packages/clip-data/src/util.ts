import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, DataError, ValueError, formatZodIssues } from '@clip-ts/core';
import type { z } from 'zod';
import type { WarningSink } from './types.js';

/** Validate user options with a zod schema; a ConfigError lists every `path: message`. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new ConfigError(`${what} options:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

export const defaultWarn: WarningSink = (message) => process.emitWarning(message, { type: 'ClipDataWarning' });

/** Short stable hash (hex) of a sequence of strings; used for dataset fingerprints. */
export function hashStrings(parts: Iterable<string>): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    h.update('\u0000');
  }
  return h.digest('hex').slice(0, 16);
}

/** Resolve a directory given by the user, following symlinks; a DataError if it is missing. */
export function realDir(dir: string, what: string): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    throw new DataError(`${what}: directory not found: ${dir}`);
  }
  if (!statSync(real).isDirectory()) throw new DataError(`${what}: not a directory: ${dir}`);
  return real;
}

/**
 * Check that `name` (from a list file: captions, split, CSV) is a relative path that stays inside its
 * base directory: no absolute paths, drive letters or `..` segments. `where` is `file:line`.
 */
export function checkRelativeName(name: string, where: string): void {
  if (name.length === 0) throw new DataError(`${where}: empty image name`);
  if (path.isAbsolute(name) || path.win32.isAbsolute(name) || /^[a-zA-Z]:/.test(name)) {
    throw new DataError(`${where}: image name '${name}' is an absolute path; names must be relative to the dataset root`);
  }
  if (name.split(/[\\/]+/).includes('..')) {
    throw new DataError(`${where}: image name '${name}' contains '..'; names must stay inside the dataset root`);
  }
  if (name.includes('\0')) throw new DataError(`${where}: image name contains a NUL byte`);
}

/**
 * Real path of `p` (following symlinks), or null when it does not exist. A path that leads out of
 * `realBase` (already a realpath) is a DataError naming `where` (a symlink out of the root).
 */
export function realInside(realBase: string, p: string, where: string): string | null {
  let real: string;
  try {
    real = realpathSync(p);
  } catch {
    return null;
  }
  if (!isInside(realBase, real)) {
    throw new DataError(`${where}: '${path.relative(realBase, p)}' resolves to ${real}, outside the dataset directory ${realBase} (symlink out of the root)`);
  }
  return real;
}

/** Resolve image `name` inside `realBase`: its real path, or null when there is no such file. */
export function resolveInside(realBase: string, name: string, where: string): string | null {
  const real = realInside(realBase, path.join(realBase, name), where);
  return real !== null && statSync(real).isFile() ? real : null;
}

export function isInside(base: string, p: string): boolean {
  const rel = path.relative(base, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** `a, b, c and 7 more` */
export function listSome(items: readonly string[], max = 10): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

export function checkIndex(index: number, length: number, what: string): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new ValueError(`${what}: index ${index} out of range [0, ${length})`);
  }
}

/** Class names for prompts: `aquarium_fish` → `aquarium fish`. */
export function promptName(raw: string): string {
  return raw.replace(/_/g, ' ').trim();
}
