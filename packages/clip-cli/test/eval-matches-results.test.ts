import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExperiment, type Results } from '@clip-ts/train';
import { runEval } from '../src/commands/eval.js';
import { tinyConfig } from '../../clip-train/test/helpers/tiny-config.js';
import { captureIO } from './helpers/tiny-checkpoint.js';

let dir: string;

// Captions name the colour, so training moves the metrics away from chance; 3 captions per image.
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-eval-results-'));
  const rows = ['image,caption,split'];
  const sizes: Array<[string, number]> = [['train', 12], ['val', 4], ['test', 7]];
  let i = 0;
  for (const [split, n] of sizes) {
    for (let j = 0; j < n; j++, i++) {
      const rgb = { r: (i * 53) % 256, g: (i * 97) % 256, b: (i * 151) % 256 };
      await sharp({ create: { width: 16, height: 16, channels: 3, background: rgb } }).png().toFile(join(dir, `${i}.png`));
      for (const c of [`red ${rgb.r} green ${rgb.g}`, `a square of blue ${rgb.b}`, `colour ${rgb.r} ${rgb.g} ${rgb.b}`]) rows.push(`${i}.png,${c},${split}`);
    }
  }
  await writeFile(join(dir, 'captions.csv'), rows.join('\n') + '\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('clip eval on a run\'s best/', () => {
  it("reproduces exactly the test metrics runExperiment wrote in results.json (same batch size, caption pick, seed)", async () => {
    const runDir = join(dir, 'run');
    const base = tinyConfig(runDir);
    // Eval batches of 3 over 7 test images: the last batch is partial, which both must count the same way.
    await runExperiment(
      { ...base, seed: 11, data: { ...base.data!, dataset: { kind: 'csv', root: dir }, batchSize: 4, evalBatchSize: 3, captionPick: 'random' } },
      { io: { stdout: () => {}, stderr: () => {} } },
    );
    const results = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8')) as Results;
    const test = results.test!;

    const before = tf.memory().numTensors;
    const r = await runEval(
      { checkpoint: join(runDir, 'best'), dataset: 'csv', root: dir, split: 'test', batchSize: 3, caption: 'random', seed: 11, backend: 'cpu' },
      captureIO(),
    );
    expect(tf.memory().numTensors).toBe(before);

    // Exact equality, not a tolerance: both run the same evaluateCaptionSplit on the same batches, and
    // results.json's numbers survive the JSON round trip (shortest round-trip doubles).
    expect(r.loss).toBe(test.loss);
    expect(r.inBatch.batchSize).toBe(test.batchSize);
    expect(r.inBatch.topK).toEqual(Object.keys(test.topK).map((key) => ({ k: Number(key.slice(3)), imageToText: test.topK[key], textToImage: test.textTopK[key] })));
    expect([r.images, r.captions]).toEqual([test.retrieval.images, test.retrieval.captions]);
    expect(r.recall).toEqual(test.retrieval.recall);
    expect([r.images, r.captions]).toEqual([7, 21]);

    // The seed matters: another run seed picks other captions, so the loss differs.
    const other = await runEval(
      { checkpoint: join(runDir, 'best'), dataset: 'csv', root: dir, split: 'test', batchSize: 3, caption: 'random', seed: 12, backend: 'cpu' },
      captureIO(),
    );
    expect(other.loss).not.toBe(test.loss);
  });
});
