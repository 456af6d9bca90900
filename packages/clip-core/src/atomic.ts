import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ClipError, WriteError } from './errors.js';

/**
 * Crash-safe file replacement: data goes to a temp file in the SAME directory (rename is only atomic
 * within one filesystem), is fsync'ed, then renamed over the target. A crash or error at any point leaves
 * either the old file or the new one, never a torn mix; temp files of a failed write are removed.
 */

export interface AtomicFile {
  path: string;
  data: Uint8Array | string;
}

function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

async function writeDurable(file: string, data: Uint8Array | string): Promise<void> {
  // 'wx': never follow or clobber something already at the temp path.
  const handle = await fs.open(file, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync a directory so the renames inside it survive a power cut (best effort: not every FS allows it). */
async function syncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms (Windows, some network filesystems) cannot fsync a directory; the rename stands.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Every write failure reaches the caller as one typed error naming the file, whatever the OS said. */
function writeError(err: unknown, file: string): ClipError {
  if (err instanceof ClipError) return err;
  return new WriteError(`${(err as Error).message} (while writing ${file})`, { cause: err });
}

/**
 * Write several files as one unit. Every new file is first written and synced to a temp file; nothing
 * is replaced until all of them are on disk. Then the old files are hard-linked to backups and the temp
 * files renamed over the targets in order; if a rename fails, the targets already replaced are restored
 * from their backups, so an error at any point leaves every target with its previous content. Failures are
 * WriteErrors naming the file (the OS error is the cause). (A crash
 * between two renames can still leave a mix; the backups are then left next to the files.)
 */
export async function writeFilesAtomic(files: readonly AtomicFile[]): Promise<void> {
  const temps: string[] = [];
  const backups: Array<string | undefined> = [];
  const cleanup = (paths: ReadonlyArray<string | undefined>): Promise<unknown> =>
    Promise.all(paths.map((p) => (p ? fs.rm(p, { force: true }).catch(() => undefined) : undefined)));
  let current = files[0]?.path ?? '';
  try {
    for (const f of files) {
      current = f.path;
      const tmp = tempPathFor(f.path);
      temps.push(tmp);
      await writeDurable(tmp, f.data);
    }
    for (const f of files) {
      current = f.path;
      backups.push(await backup(f.path));
    }
  } catch (err) {
    await cleanup([...temps, ...backups]);
    throw writeError(err, current);
  }
  let done = 0;
  try {
    for (; done < files.length; done++) await fs.rename(temps[done] as string, (files[done] as AtomicFile).path);
  } catch (err) {
    // Roll back the targets already replaced, newest first.
    for (let i = done - 1; i >= 0; i--) {
      const target = (files[i] as AtomicFile).path;
      const b = backups[i];
      await (b ? fs.rename(b, target) : fs.rm(target, { force: true })).catch(() => undefined);
    }
    await cleanup([...temps.slice(done), ...backups]);
    throw writeError(err, (files[done] as AtomicFile).path);
  }
  await cleanup(backups);
  for (const dir of new Set(files.map((f) => path.dirname(f.path)))) await syncDir(dir);
}

/** Hard-link an existing target to a backup name (no copy); undefined when there is no old file. */
async function backup(target: string): Promise<string | undefined> {
  const b = tempPathFor(target).replace(/\.tmp$/, '.bak');
  try {
    await fs.link(target, b);
    return b;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') return undefined;
    // Filesystems without hard links: fall back to a copy.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'EMLINK') {
      await fs.copyFile(target, b);
      return b;
    }
    throw err;
  }
}

/** Atomically replace one file (see writeFilesAtomic). */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  await writeFilesAtomic([{ path: file, data }]);
}
