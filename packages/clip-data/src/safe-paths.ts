import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '@clip-ts/core';

// Names in list files (captions, splits, CSVs) and symlinks come from users' data: every path is checked
// to stay inside the dataset directory before it is opened.

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

/** True when `p` is `base` or lies below it (both already resolved). */
export function isInside(base: string, p: string): boolean {
  const rel = path.relative(base, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
