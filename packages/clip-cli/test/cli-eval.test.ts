import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import type { EvalResult } from '../src/commands/eval.js';
import { captureIO, writeTinyCheckpoint } from './helpers/tiny-checkpoint.js';

let dir: string;
let ckpt: string;
const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-eval-'));
  ckpt = await writeTinyCheckpoint(join(dir, 'ckpt'));
  const rows = ['image,caption,split'];
  for (const [i, c] of COLOURS.entries()) {
    await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: (i * 40) % 256, g: (i * 90) % 256, b: (i * 150) % 256 } } })
      .png()
      .toFile(join(dir, `${c}.png`));
    const split = i < 7 ? 'test' : 'train';
    rows.push(`${c}.png,a ${c} square,${split}`, `${c}.png,"a square, ${c}",${split}`);
  }
  await writeFile(join(dir, 'captions.csv'), rows.join('\n') + '\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('clip eval', () => {
  it('reports loss, in-batch top-k over all batches and full-split recall as one JSON object', async () => {
    const io = captureIO();
    const before = tf.memory().numTensors;
    const code = await runCli(['eval', '--checkpoint', ckpt, '--dataset', 'csv', '--root', dir, '--split', 'test', '--batch-size', '3', '--json', '--backend', 'cpu'], io);
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    const r = JSON.parse(io.out()) as EvalResult;
    expect([r.images, r.captions, r.split]).toEqual([7, 14, 'test']);
    expect(Number.isFinite(r.loss) && r.loss > 0).toBe(true);
    // 7 images in batches of 3: all three batches count, the last (1 image) too (the trainer's protocol).
    expect(r.inBatch).toMatchObject({ batchSize: 3, batches: 3 });
    const top5 = r.inBatch.topK.find((t) => t.k === 5);
    expect(top5).toEqual({ k: 5, imageToText: 1, textToImage: 1 }); // 5 ≥ batch size: always a hit
    expect(r.recall.map((x) => x.k)).toEqual([1, 5, 10]);
    for (const x of r.recall) {
      expect(x.imageToText).toBeGreaterThanOrEqual(0);
      expect(x.imageToText).toBeLessThanOrEqual(1);
    }
    expect(r.recall[0]?.imageToText).toBeLessThanOrEqual(r.recall[1]?.imageToText ?? 0);
  });

  it('prints a markdown table naming the batch size, and falls back when the split is smaller than a batch', async () => {
    const io = captureIO();
    expect(await runCli(['eval', '--checkpoint', ckpt, '--dataset', 'csv', '--root', dir, '--split', 'test', '--backend', 'cpu'], io)).toBe(0);
    expect(io.out()).toContain('in-batch top-1 (batch 7)');
    expect(io.out()).toContain('Recall@5 (full split)');
    expect(io.out()).toMatch(/test loss \(symmetric CLIP\)\s+\|\s+\d+\.\d{4}/);
    expect(io.err()).toContain('fewer images (7) than --batch-size');
  });

  it('fails with exit 2 on a missing dataset root or a bad split', async () => {
    const a = captureIO();
    expect(await runCli(['eval', '--checkpoint', ckpt, '--dataset', 'flickr8k', '--root', join(dir, 'missing'), '--backend', 'cpu'], a)).toBe(2);
    const b = captureIO();
    expect(await runCli(['eval', '--checkpoint', ckpt, '--dataset', 'shapes', '--split', 'bogus', '--backend', 'cpu'], b)).toBe(2);
    expect(b.err()).toContain("no split 'bogus'");
    const c = captureIO();
    expect(await runCli(['eval', '--checkpoint', ckpt, '--dataset', 'csv', '--root', dir, '--batch-size', '0'], c)).toBe(2);
    expect(c.err()).toContain('--batch-size');
  });
});
