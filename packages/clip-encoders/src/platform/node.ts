import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError } from '@clip-ts/core';
import type { CheckpointFiles } from '../clip-checkpoint.js';
import { refusePickleOnly } from '../clip-hf-dir.js';
import { readCheckpointTensors } from '../hf-load-dir.js';
import { resolvePretrained } from '../hub.js';
import { ClipImageProcessor } from '../image-decode.js';
import { urlFiles } from '../clip-url-files.js';
import type { ClipPlatform } from './types.js';

/** Node: local directories, Hub ids through the Hub client (cache, resume, offline), URLs; sharp decoding. */

async function kindOf(p: string): Promise<'dir' | 'file' | 'none'> {
  try {
    return (await stat(p)).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'none';
  }
}

/** A Hub id is `name` or `org/name` (hub.ts's rule); anything else (./x, /x, a/b/c, C:\x) can only be a path. */
const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

function dirFiles(dir: string): CheckpointFiles {
  return {
    name: dir,
    async text(file) {
      try {
        return await readFile(join(dir, file), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new CheckpointError(`${join(dir, file)}: cannot read: ${(err as Error).message}`, { cause: err });
      }
    },
    async tensors(keep) {
      await refusePickleOnly(dir);
      return readCheckpointTensors(dir, keep);
    },
  };
}

export const platform: ClipPlatform = {
  async open(source, options) {
    if (/^https?:\/\//i.test(source)) return urlFiles(source, options);
    const kind = await kindOf(source);
    if (kind === 'file') throw new CheckpointError(`${source}: is a file; give the checkpoint's directory`);
    if (kind === 'none' && (!HUB_ID.test(source) || source.includes('..'))) {
      // A crash mid-save (atomic directory swap) can leave only the previous checkpoint, renamed `.old`.
      const old = `${source.replace(/[\\/]+$/, '')}.old`;
      if ((await kindOf(old)) === 'dir') {
        throw new CheckpointError(`${source}: the checkpoint directory does not exist; a save was interrupted and left ${old}, the previous complete checkpoint: load that (or rename it to ${source})`);
      }
      throw new CheckpointError(`${source}: the checkpoint directory does not exist`);
    }
    return dirFiles(await resolvePretrained(source, options));
  },
  imageProcessor: (options) => new ClipImageProcessor(options),
};
