import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import { captureIO, writeTinyCheckpoint } from './helpers/tiny-checkpoint.js';

let dir: string;
let ckpt: string;
// SVHN MAT-files written by @clip-ts/data's reference writer (fixtures/svhn/make_mat.py): test 12 images, train 7, extra 3.
const SVHN = fileURLToPath(new URL('../../clip-data/test/fixtures/svhn/good', import.meta.url));

/** cifar-10-batches-bin with `n` test records whose labels cycle 0..9 (train batches hold one record each). */
async function writeCifar(root: string, n: number): Promise<void> {
  const d = join(root, 'cifar-10-batches-bin');
  await mkdir(d, { recursive: true });
  const records = (count: number) => {
    const b = Buffer.alloc(count * 3073);
    for (let i = 0; i < count; i++) {
      b[i * 3073] = i % 10;
      b.fill((i * 37) % 256, i * 3073 + 1, (i + 1) * 3073);
    }
    return b;
  };
  for (let i = 1; i <= 5; i++) await writeFile(join(d, `data_batch_${i}.bin`), records(1));
  await writeFile(join(d, 'test_batch.bin'), records(n));
  await writeFile(join(d, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-zs-'));
  ckpt = await writeTinyCheckpoint(join(dir, 'ckpt'));
  await writeCifar(join(dir, 'cifar'), 20);
  for (const [cls, colour] of [['red_thing', { r: 250, g: 0, b: 0 }], ['blue_thing', { r: 0, g: 0, b: 250 }]] as const) {
    await mkdir(join(dir, 'folder', cls), { recursive: true });
    for (let i = 0; i < 3; i++) {
      await sharp({ create: { width: 10 + i, height: 10, channels: 3, background: colour } }).png().toFile(join(dir, 'folder', cls, `${i}.png`));
    }
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('clip zeroshot', () => {
  it('reports each template and their ensemble on CIFAR-10 as one JSON object', async () => {
    const io = captureIO();
    const before = tf.memory().numTensors;
    const code = await runCli(
      ['zeroshot', '--checkpoint', ckpt, '--dataset', 'cifar10', '--root', join(dir, 'cifar'), '--template', '{}', '--template', 'a photo of a {}.', '--json', '--backend', 'cpu'],
      io,
    );
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    const r = JSON.parse(io.out()) as {
      images: number;
      chance: number;
      classNames: string[];
      scores: Array<{ template: string; topK: Record<string, number> }>;
      perClassAccuracy: Record<string, number>;
      confusionMatrix: number[][];
    };
    expect(r.images).toBe(20);
    expect(r.chance).toBeCloseTo(0.1);
    expect(r.scores.map((s) => s.template)).toEqual(['{}', 'a photo of a {}.', 'ensemble of 2']);
    for (const s of r.scores) {
      expect(Object.keys(s.topK)).toEqual(['1', '3', '5']);
      expect(s.topK['1']).toBeLessThanOrEqual(s.topK['3'] as number);
      expect(s.topK['3']).toBeLessThanOrEqual(s.topK['5'] as number);
    }
    // The confusion matrix counts every image once, 2 per class (labels cycle 0..9 over 20 records).
    expect(r.confusionMatrix.map((row) => row.reduce((a, b) => a + b, 0))).toEqual(Array(10).fill(2));
    const diag = r.confusionMatrix.reduce((a, row, i) => a + (row[i] ?? 0), 0);
    expect(r.scores[2]?.topK['1']).toBeCloseTo(diag / 20);
    expect(Object.keys(r.perClassAccuracy)).toEqual(r.classNames);
  });

  it('prints markdown tables for an image folder, with chance level', async () => {
    const io = captureIO();
    expect(await runCli(['zeroshot', '--checkpoint', ckpt, '--dataset', 'imagefolder', '--root', join(dir, 'folder'), '--backend', 'cpu'], io)).toBe(0);
    const out = io.out();
    expect(out).toContain('6 images, 2 classes, chance top-1 = 50.00%');
    expect(out).toMatch(/\| prompt\s+\|\s+top-1 \|/);
    expect(out).not.toContain('top-3'); // only 2 classes
    expect(out).toContain('| red thing');
    expect(out).toContain('Confusion matrix');
  });

  it('--dataset svhn reads the MAT-file of the split, with class names 0..9', async () => {
    const io = captureIO();
    const before = tf.memory().numTensors;
    const code = await runCli(['zeroshot', '--checkpoint', ckpt, '--dataset', 'svhn', '--root', SVHN, '--template', 'a photo of the number {}.', '--json', '--backend', 'cpu'], io);
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    const r = JSON.parse(io.out()) as { dataset: string; split: string; images: number; classNames: string[]; confusionMatrix: number[][] };
    expect([r.dataset, r.split, r.images]).toEqual(['svhn', 'test', 12]);
    expect(r.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // Image n is digit n % 10: digits 0 and 1 twice, the others once.
    expect(r.confusionMatrix.map((row) => row.reduce((a, b) => a + b, 0))).toEqual([2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    const extra = captureIO();
    expect(await runCli(['zeroshot', '--checkpoint', ckpt, '--dataset', 'svhn', '--root', SVHN, '--split', 'extra', '--backend', 'cpu'], extra)).toBe(0);
    expect(extra.out()).toContain('Zero-shot on svhn/extra: 3 images, 10 classes');
    const badSplit = captureIO();
    expect(await runCli(['zeroshot', '--checkpoint', ckpt, '--dataset', 'svhn', '--root', SVHN, '--split', 'val', '--backend', 'cpu'], badSplit)).toBe(2);
    expect(badSplit.err()).toContain("SVHN has no split 'val'; available: train, test, extra");
    const missing = captureIO();
    expect(await runCli(['zeroshot', '--checkpoint', ckpt, '--dataset', 'svhn', '--root', dir, '--backend', 'cpu'], missing)).toBe(2);
    expect(missing.err()).toContain('test_32x32.mat not found');
  });

  it('rejects a template without {} and an unknown dataset (exit 2)', async () => {
    const a = captureIO();
    expect(await runCli(['zeroshot', '--checkpoint', ckpt, '--dataset', 'cifar10', '--root', dir, '--template', 'a photo'], a)).toBe(2);
    expect(a.err()).toContain("exactly one '{}'");
    const b = captureIO();
    expect(await runCli(['zeroshot', '--checkpoint', ckpt, '--dataset', 'mnist', '--root', dir], b)).toBe(2);
    expect(b.err()).toContain('cifar10, cifar100, imagefolder, shapes');
    const c = captureIO();
    expect(await runCli(['zeroshot', '--checkpoint', ckpt, '--dataset', 'cifar10', '--backend', 'cpu'], c)).toBe(2);
    expect(c.err()).toContain('needs --root');
  });
});
