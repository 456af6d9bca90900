import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { TrainingError } from '../trainer/errors.js';

/**
 * Who owns a run directory. A run directory is either new/empty or one this tool created (it holds the
 * marker file); a run only ever writes the entries in RUN_OWNED_ENTRIES, so anything else a user keeps in a
 * marked directory is left alone, and an unmarked directory with anything in it is refused untouched.
 */

export const RUN_MARKER_FILE = '.clip-run';
/** Earlier `clip demo` versions marked their directories with this name; such directories count as marked. */
const LEGACY_MARKERS = ['.clip-demo'];

/** Every entry a run (runExperiment, clip demo) writes into its run directory. */
export const RUN_OWNED_ENTRIES: readonly string[] = [
  RUN_MARKER_FILE,
  'config.json',
  'results.json',
  'history.csv',
  'history.jsonl',
  'loss.svg',
  'loss.png',
  'best',
  'last',
  'best.old',
  'last.old',
  'feature-cache',
];

/** `.<name>.<pid>.<hex>.tmp`: the temp files/dirs of writeFilesAtomic and replaceDirAtomic. */
const TEMP_NAME = /^\.(.+)\.(\d+)\.([0-9a-f]+)\.tmp$/;

async function readEntries(dir: string): Promise<string[] | undefined> {
  try {
    return (await fs.readdir(dir)).sort();
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw new TrainingError(`${dir}: cannot read the run directory: ${(err as Error).message}`, { cause: err });
  }
}

/** True when `pid` is a live process (EPERM: alive but someone else's). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * Remove the temp files and directories that processes which no longer run left in `dir` (a `kill -9`
 * mid-checkpoint leaves `.best.<pid>.<hex>.tmp/` with partial weights). Temps of live processes are kept:
 * another run may be writing them. Returns the names removed.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of (await readEntries(dir)) ?? []) {
    const m = TEMP_NAME.exec(name);
    if (!m || processAlive(Number(m[2]))) continue;
    await fs.rm(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** Entries of `dir` a run did not write (stale temps excluded: they are a run's own leftovers). */
export function foreignEntries(entries: readonly string[]): string[] {
  return entries.filter((e) => !RUN_OWNED_ENTRIES.includes(e) && !LEGACY_MARKERS.includes(e) && !TEMP_NAME.test(e));
}

function isMarked(entries: readonly string[]): boolean {
  return entries.includes(RUN_MARKER_FILE) || LEGACY_MARKERS.some((m) => entries.includes(m));
}

function listSome(names: readonly string[]): string {
  const shown = names.slice(0, 8).join(', ');
  return names.length > 8 ? `${shown} and ${names.length - 8} more` : shown;
}

/** The marker's content says what it is, for a user who finds it. */
const MARKER_TEXT = 'This directory is a clip-ts run directory: `clip train` / `clip demo` replace only the files they write here.\n';

/**
 * Make `runDir` the run's own before anything is written: create it if missing; refuse (TrainingError naming
 * the files, nothing touched) an existing directory that is neither empty nor marked; remove stale temps of
 * dead processes; write the marker. With `resume`, a directory without a marker that already holds a `last/`
 * checkpoint (written by an older version) is accepted and marked.
 */
export async function claimRunDir(runDir: string, options: { resume?: boolean } = {}): Promise<{ removedTemps: string[] }> {
  const entries = await readEntries(runDir);
  if (entries && !isMarked(entries) && !(options.resume && (entries.includes('last') || entries.includes('last.old')))) {
    const foreign = entries.filter((e) => !TEMP_NAME.test(e));
    if (foreign.length > 0) {
      throw new TrainingError(
        `${runDir} is not empty and was not created by clip-ts (no ${RUN_MARKER_FILE} marker); it holds ${listSome(foreign)}. ` +
          'Nothing was written: choose a new or empty output.runDir.',
      );
    }
  }
  try {
    await fs.mkdir(runDir, { recursive: true });
    const removedTemps = await removeStaleTemps(runDir);
    if (!entries?.includes(RUN_MARKER_FILE)) await fs.writeFile(path.join(runDir, RUN_MARKER_FILE), MARKER_TEXT);
    return { removedTemps };
  } catch (err) {
    throw new TrainingError(`${runDir}: cannot prepare the run directory: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Empty a marked run directory of what a previous run wrote (the `clip demo` rerun), keeping every entry
 * the tool did not write. An unmarked, non-empty directory is refused untouched. Returns the entries kept.
 */
export async function resetRunDir(runDir: string, options: { what?: string } = {}): Promise<string[]> {
  const entries = await readEntries(runDir);
  if (!entries || entries.length === 0) return [];
  if (!isMarked(entries)) {
    throw new TrainingError(
      `${runDir} exists and is not ${options.what ?? 'a clip-ts run directory'} (no ${RUN_MARKER_FILE} marker); it holds ${listSome(entries)}. ` +
        'Nothing was changed: choose another directory or remove it.',
    );
  }
  await removeStaleTemps(runDir);
  for (const e of entries) {
    if (e === RUN_MARKER_FILE || !(RUN_OWNED_ENTRIES.includes(e) || LEGACY_MARKERS.includes(e))) continue;
    await fs.rm(path.join(runDir, e), { recursive: true, force: true });
  }
  // A legacy-marked directory keeps its user's files, so it needs the current marker to stay claimable.
  await fs.writeFile(path.join(runDir, RUN_MARKER_FILE), MARKER_TEXT);
  return foreignEntries(entries);
}
