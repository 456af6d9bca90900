import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLIPModel, createImageEncoder, createTextEncoder, initBackend, WriteError } from '../src/index.js';
import { writeFileAtomic, writeFilesAtomic, saveCLIPModel } from '../src/node.js';
import { IMAGE_CONFIG, TEXT_CONFIG, registerFakeTowers } from './helpers/fake-towers.js';

// Fault injection: vitest hoists vi.mock, so src/atomic.ts gets this fs/promises, in which `rename` and
// `open` fail on demand; every other function is the real one.
const faults = vi.hoisted(() => ({ renameFailsFor: undefined as string | undefined, writeFailsAfter: -1 }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    rename: async (from: string, to: string) => {
      if (faults.renameFailsFor && basename(to) === faults.renameFailsFor) {
        throw Object.assign(new Error(`EIO: injected rename failure for ${to}`), { code: 'EIO' });
      }
      return real.rename(from, to);
    },
    open: async (...args: Parameters<typeof real.open>) => {
      const handle = await real.open(...args);
      if (args[1] === 'wx' && faults.writeFailsAfter >= 0 && faults.writeFailsAfter-- === 0) {
        await handle.close();
        throw Object.assign(new Error('ENOSPC: injected: no space left on device'), { code: 'ENOSPC' });
      }
      return handle;
    },
  };
});

let dir: string;
beforeAll(async () => {
  await initBackend('cpu');
  registerFakeTowers();
  dir = await mkdtemp(join(tmpdir(), 'clip-atomic-'));
});
afterEach(() => {
  faults.renameFailsFor = undefined;
  faults.writeFailsAfter = -1;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFilesAtomic', () => {
  it('replaces all files, or — when a later rename fails — restores the ones already replaced', async () => {
    const a = join(dir, 'a.txt');
    const b = join(dir, 'b.txt');
    await writeFilesAtomic([
      { path: a, data: 'old a' },
      { path: b, data: 'old b' },
    ]);
    faults.renameFailsFor = 'b.txt';
    await expect(
      writeFilesAtomic([
        { path: a, data: 'new a' },
        { path: b, data: 'new b' },
      ]),
    ).rejects.toThrow(/injected rename failure/);
    expect(await readFile(a, 'utf8')).toBe('old a');
    expect(await readFile(b, 'utf8')).toBe('old b');
    expect((await readdir(dir)).sort()).toEqual(['a.txt', 'b.txt']);

    faults.renameFailsFor = undefined;
    await writeFilesAtomic([
      { path: a, data: 'new a' },
      { path: b, data: 'new b' },
    ]);
    expect(await readFile(a, 'utf8')).toBe('new a');
    expect((await readdir(dir)).sort()).toEqual(['a.txt', 'b.txt']);
  });

  it('a new file that fails to rename is not left behind', async () => {
    const c = join(dir, 'c.txt');
    faults.renameFailsFor = 'c.txt';
    await expect(writeFilesAtomic([{ path: c, data: 'c' }])).rejects.toThrow(/EIO/);
    expect(await readdir(dir)).not.toContain('c.txt');
  });

  it('every failure is a WriteError naming the file (disk full while writing, a failed rename), old content kept', async () => {
    const h = join(dir, 'history.csv');
    await writeFileAtomic(h, 'old');
    faults.writeFailsAfter = 0;
    const full = await writeFileAtomic(h, 'new').catch((e: unknown) => e);
    expect(full).toBeInstanceOf(WriteError);
    expect((full as WriteError).code).toBe('WRITE');
    expect((full as Error).message).toBe(`ENOSPC: injected: no space left on device (while writing ${h})`);
    faults.renameFailsFor = 'history.csv';
    const rename = await writeFileAtomic(h, 'new').catch((e: unknown) => e);
    expect(rename).toBeInstanceOf(WriteError);
    expect((rename as Error).message).toContain(`(while writing ${h})`);
    expect(await readFile(h, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((f) => f.includes('history'))).toEqual(['history.csv']);
  });
});

describe('CLIPModel.save under filesystem faults', () => {
  it('keeps the previous checkpoint byte-identical when the disk fills up or a rename fails', async () => {
    const ckpt = join(dir, 'ckpt');
    const model = new CLIPModel({
      imageEncoder: createImageEncoder(IMAGE_CONFIG, { seed: 1 }),
      textEncoder: createTextEncoder(TEXT_CONFIG, { seed: 2 }),
      projectionDim: 4,
    });
    await saveCLIPModel(model, ckpt);
    await writeFile(join(ckpt, 'trainer_state.json'), '{"epoch": 3}'); // someone else's file: untouched
    const old = {
      config: await readFile(join(ckpt, 'config.json')),
      weights: await readFile(join(ckpt, 'model.safetensors')),
    };
    tf.tidy(() => model.logitScale.assign(tf.scalar(0.5)));

    faults.writeFailsAfter = 1; // the weights' temp file is written, the config's fails
    await expect(saveCLIPModel(model, ckpt)).rejects.toThrow(/cannot save checkpoint: ENOSPC/);
    expect(await readFile(join(ckpt, 'config.json'))).toEqual(old.config);
    expect(await readFile(join(ckpt, 'model.safetensors'))).toEqual(old.weights);
    expect((await readdir(ckpt)).sort()).toEqual(['config.json', 'model.safetensors', 'trainer_state.json']);

    faults.renameFailsFor = 'config.json'; // weights already renamed into place, then the config fails
    await expect(saveCLIPModel(model, ckpt)).rejects.toThrow(/cannot save checkpoint: EIO/);
    expect(await readFile(join(ckpt, 'config.json'))).toEqual(old.config);
    expect(await readFile(join(ckpt, 'model.safetensors'))).toEqual(old.weights);
    expect((await readdir(ckpt)).sort()).toEqual(['config.json', 'model.safetensors', 'trainer_state.json']);
    model.dispose();
  });
});
