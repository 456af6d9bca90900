/**
 * safetensors files on disk (Node): read, read the header only, write atomically. The format itself —
 * validation, decoding, encoding — is in ./safetensors.ts and works on bytes anywhere.
 */
import * as fs from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { SafetensorsError } from './errors.js';
import {
  checkHeaderLength,
  parseHeaderJson,
  parseSafetensors,
  serializeSafetensors,
  type ReadOptions,
  type SafetensorsFile,
  type SafetensorsHeader,
  type WritableTensor,
} from './safetensors.js';

function ioError(path: string, err: unknown): SafetensorsError {
  return new SafetensorsError(`${path}: cannot read: ${(err as Error).message}`, { cause: err });
}

/** Read and decode a safetensors file. I/O failures are SafetensorsErrors too (cause attached). */
export async function readSafetensors(path: string, options: ReadOptions = {}): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (err) {
    throw ioError(path, err);
  }
  return parseSafetensors(bytes, path, options);
}

/**
 * Read only the header (names, dtypes, shapes, offsets) without loading the data: cheap even for
 * multi-GB shards, e.g. to find which shard holds which weights.
 */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (err) {
    throw ioError(path, err);
  }
  try {
    const { size } = await handle.stat();
    const prefix = new Uint8Array(8);
    if (size >= 8) await handle.read(prefix, 0, 8, 0);
    const n = checkHeaderLength(prefix, size, path);
    const headerBytes = new Uint8Array(n);
    const { bytesRead } = await handle.read(headerBytes, 0, n, 8);
    if (bytesRead !== n) throw new SafetensorsError(`${path}: header truncated: read ${bytesRead} of ${n} bytes`);
    return { ...parseHeaderJson(headerBytes, size - 8 - n, path), dataStart: 8 + n };
  } catch (err) {
    if (err instanceof SafetensorsError) throw err;
    throw ioError(path, err);
  } finally {
    await handle.close();
  }
}

/** Serialize and atomically write (temp file in the same directory, fsync, rename). */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, WritableTensor> | Readonly<Record<string, WritableTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const bytes = serializeSafetensors(tensors, metadata);
  await writeFileAtomic(path, bytes);
}
