import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

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

/**
 * Write several files so that each is replaced atomically and no target is touched until EVERY new file
 * is fully on disk: all temp files are written and synced first, then renamed in order. If anything fails
 * before the renames, all targets keep their previous content.
 */
export async function writeFilesAtomic(files: readonly AtomicFile[]): Promise<void> {
  const temps: string[] = [];
  try {
    for (const f of files) {
      const tmp = tempPathFor(f.path);
      temps.push(tmp);
      await writeDurable(tmp, f.data);
    }
    for (let i = 0; i < files.length; i++) {
      await fs.rename(temps[i] as string, (files[i] as AtomicFile).path);
    }
  } catch (err) {
    await Promise.all(temps.map((t) => fs.rm(t, { force: true }).catch(() => undefined)));
    throw err;
  }
  for (const dir of new Set(files.map((f) => path.dirname(f.path)))) await syncDir(dir);
}

/** Atomically replace one file (see writeFilesAtomic). */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  await writeFilesAtomic([{ path: file, data }]);
}
