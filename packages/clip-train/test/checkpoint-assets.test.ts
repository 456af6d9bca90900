import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError } from '@clip-ts/core';
import { CLIP, CLIP_MEAN, CLIP_STD } from '@clip-ts/encoders';
import { DEFAULT_MAX_LENGTH, saveCheckpointAssets } from '../src/experiment/checkpoint-assets.js';
import { writeTinyCheckpoint } from './helpers/tiny-checkpoint.js';
import { TOKENIZER } from './helpers/tiny-config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-ckpt-assets-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// What saveCheckpointAssets writes, read back by its reader CLIP.fromPretrained (@clip-ts/encoders).
describe('checkpoint assets', () => {
  it('round-trips tokenizer, caption length and image preprocessing through the files', async () => {
    const ckpt = await writeTinyCheckpoint(join(dir, 'a'));
    const pre = JSON.parse(await readFile(join(ckpt, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
    expect(pre).toMatchObject({ size: { height: 16, width: 16 }, do_resize: true, resample: 2, image_mean: [...CLIP_MEAN], image_std: [...CLIP_STD] });
    const loaded = await CLIP.fromPretrained(ckpt);
    try {
      expect(loaded.maxLength).toBe(16);
      expect([loaded.imageProcessor.height, loaded.imageProcessor.width]).toEqual([16, 16]);
      expect(loaded.imageProcessor.options.mean).toEqual(CLIP_MEAN);
      expect(loaded.tokenizer.vocabSize).toBe(30522);
      expect(Array.from(loaded.tokenizer.encode(['Hello, my dog is cute'], 10).inputIds)).toEqual([101, 7592, 1010, 2026, 3899, 2003, 10140, 102, 0, 0]);
    } finally {
      loaded.dispose();
    }
  });

  it('falls back to the reference caption length without tokenizer_config.json, and to it for HF-style 512', async () => {
    const ckpt = await writeTinyCheckpoint(join(dir, 'b'));
    await unlink(join(ckpt, 'tokenizer_config.json'));
    const a = await CLIP.fromPretrained(ckpt);
    a.dispose();
    expect(a.maxLength).toBe(DEFAULT_MAX_LENGTH);
    await writeFile(join(ckpt, 'tokenizer_config.json'), '{"model_max_length": 512}');
    const b = await CLIP.fromPretrained(ckpt);
    b.dispose();
    expect(b.maxLength).toBe(DEFAULT_MAX_LENGTH);
  });

  it('names what is missing or wrong', async () => {
    const ckpt = await writeTinyCheckpoint(join(dir, 'c'));
    await writeFile(join(ckpt, 'tokenizer_config.json'), '{"model_max_length": 1}');
    await expect(CLIP.fromPretrained(ckpt)).rejects.toThrow(ConfigError);
    await unlink(join(ckpt, 'tokenizer.json'));
    await expect(CLIP.fromPretrained(ckpt)).rejects.toThrow(CheckpointError);
    await expect(saveCheckpointAssets(join(dir, 'd'), { tokenizerFile: TOKENIZER, maxLength: 1, imageProcessor: {} })).rejects.toThrow(ConfigError);
    await expect(saveCheckpointAssets(join(dir, 'd'), { tokenizerFile: join(dir, 'nope.json'), maxLength: 8, imageProcessor: {} })).rejects.toThrow(/cannot write checkpoint assets/);
  });

  it('a checkpoint directory that is not there says so (issue 15, item 7), and points at the .old a crash left', async () => {
    const missing = join(dir, 'no', 'such', 'dir');
    const err = await CLIP.fromPretrained(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toBe(`${missing}: the checkpoint directory does not exist`);
    // A crash between moving best/ aside and renaming the new one in leaves only best.old.
    const run = join(dir, 'crashed');
    await writeTinyCheckpoint(join(run, 'best.old'));
    const e2 = await CLIP.fromPretrained(join(run, 'best')).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(CheckpointError);
    expect((e2 as Error).message).toMatch(/best: the checkpoint directory does not exist; a save was interrupted and left .*best\.old/);
    expect((e2 as Error).message).not.toMatch(/tokenizer/);
  });
});
