import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSvhn } from '@clip-ts/data';
import { runCli } from '../src/cli.js';
import type { ProbeCommandResult } from '../src/commands/probe.js';
import { captureIO, writeTinyCheckpoint } from './helpers/tiny-checkpoint.js';

let dir: string;
let ckpt: string;

/**
 * cifar-10-batches-bin in the real binary layout (1 label byte + 3072 pixel bytes per record). Every image
 * of class c is the same pattern (pixel p = (p · (c + 1) · 37) mod 256), so train and test images of a class
 * embed identically and a probe fitted on train must classify test perfectly, whatever the (random) tower
 * computes, as long as it tells the ten patterns apart.
 */
async function writeCifar(root: string, perTrainBatch: number, testCount: number): Promise<void> {
  const d = join(root, 'cifar-10-batches-bin');
  await mkdir(d, { recursive: true });
  const records = (count: number, offset: number) => {
    const b = Buffer.alloc(count * 3073);
    for (let i = 0; i < count; i++) {
      const label = (i + offset) % 10;
      b[i * 3073] = label;
      for (let p = 0; p < 3072; p++) b[i * 3073 + 1 + p] = (p * (label + 1) * 37) % 256;
    }
    return b;
  };
  for (let i = 1; i <= 5; i++) await writeFile(join(d, `data_batch_${i}.bin`), records(perTrainBatch, i));
  await writeFile(join(d, 'test_batch.bin'), records(testCount, 0));
  await writeFile(join(d, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
}

async function png(file: string, colour: { r: number; g: number; b: number }): Promise<void> {
  await sharp({ create: { width: 12, height: 12, channels: 3, background: colour } }).png().toFile(file);
}

const RED = { r: 250, g: 0, b: 0 };
const BLUE = { r: 0, g: 0, b: 250 };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-probe-'));
  ckpt = await writeTinyCheckpoint(join(dir, 'ckpt'));
  await writeCifar(join(dir, 'cifar'), 8, 20);
  for (const split of ['train', 'test']) {
    for (const [cls, colour] of [['red_thing', RED], ['blue_thing', BLUE]] as const) {
      await mkdir(join(dir, 'folder', split, cls), { recursive: true });
      for (let i = 0; i < 3; i++) await png(join(dir, 'folder', split, cls, `${i}.png`), colour);
    }
  }
  await mkdir(join(dir, 'csv'), { recursive: true });
  const lines = ['image,caption,split'];
  for (let i = 0; i < 8; i++) {
    const [name, colour] = i % 2 === 0 ? ['red', RED] : ['blue', BLUE];
    await png(join(dir, 'csv', `${i}.png`), colour);
    lines.push(`${i}.png,${name},${i < 6 ? 'train' : 'test'}`);
  }
  await writeFile(join(dir, 'csv', 'captions.csv'), `${lines.join('\n')}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('clip probe', () => {
  it('reports chance, zero-shot, the full probe and k-shot probes on CIFAR-10 as one JSON object, and plots k-shot', async () => {
    const io = captureIO();
    const before = tf.memory().numTensors;
    const plotDir = join(dir, 'plots');
    const code = await runCli(
      ['probe', '--checkpoint', ckpt, '--dataset', 'cifar10', '--root', join(dir, 'cifar'), '--shots', '1,2', '--repeats', '3', '--lambda', '1e-3', '--lambda', '1e-1', '--plot-dir', plotDir, '--json', '--backend', 'cpu'],
      io,
    );
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    const r = JSON.parse(io.out()) as ProbeCommandResult;
    expect([r.trainImages, r.testImages]).toEqual([40, 20]);
    expect(r.chance).toEqual({ top1: 0.1, top5: 0.5 });
    // Identical images per class: the probe separates them all; zero-shot with a random tower cannot be better.
    expect(r.probe.top1).toBe(1);
    expect(r.probe.top1).toBeGreaterThanOrEqual(r.zeroShot.top1);
    expect(r.probe.validation.map((v) => v.lambda)).toEqual([1e-1, 1e-3]);
    expect(r.kShot.map((k) => [k.shots, k.images, k.top1.runs.length])).toEqual([
      [1, 10, 3],
      [2, 20, 3],
    ]);
    for (const k of r.kShot) expect(k.top1.mean).toBe(1);
    expect(r.rows.map((row) => row.method.split(' ')[0])).toEqual(['chance', 'zero-shot', 'linear', '1-shot', '2-shot']);
    expect(r.rows[1]?.top1).toBe(r.zeroShot.top1);
    expect(await readFile(join(plotDir, 'kshot.svg'), 'utf8')).toMatch(/^<svg/);
    expect((await readFile(join(plotDir, 'kshot.png'))).subarray(1, 4).toString()).toBe('PNG');
  });

  it('prints one markdown table for an image folder with train/ and test/', async () => {
    const io = captureIO();
    const code = await runCli(['probe', '--checkpoint', ckpt, '--dataset', 'imagefolder', '--root', join(dir, 'folder'), '--shots', '1', '--repeats', '2', '--backend', 'cpu'], io);
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    const out = io.out();
    expect(out).toMatch(/6 train \/ 6 test images, 2 classes/);
    expect(out).toMatch(/\| chance +\| 50\.00% +\|/);
    expect(out).toMatch(/\| linear probe \(6 train images, λ = [0-9e.-]+\) +\| 100\.00% +\|/);
    expect(out).toMatch(/\| 1-shot probe \(2 draws\) +\| 100\.00% ± 0\.0 +\|/);
    expect(out).toMatch(/λ chosen on held-out train images/);
  });

  it('reads a caption CSV whose caption is the class name, split by its split column', async () => {
    const io = captureIO();
    const code = await runCli(['probe', '--checkpoint', ckpt, '--dataset', 'csv', '--root', join(dir, 'csv'), '--shots', 'none', '--lambda', '0.01', '--json', '--backend', 'cpu'], io);
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    const r = JSON.parse(io.out()) as ProbeCommandResult;
    expect(r.classNames).toEqual(['blue', 'red']);
    expect([r.trainImages, r.testImages]).toEqual([6, 2]);
    expect(r.probe.top1).toBe(1);
    expect(r.kShot).toEqual([]);
  });

  it('probes SVHN from the distributed train_32x32.mat / test_32x32.mat, digits as classes', async () => {
    const root = join(import.meta.dirname, '..', '..', 'clip-data', 'test', 'fixtures', 'svhn', 'good');
    const io = captureIO();
    const code = await runCli(['probe', '--checkpoint', ckpt, '--dataset', 'svhn', '--root', root, '--shots', 'none', '--lambda', '0.01', '--json', '--backend', 'cpu'], io);
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    const r = JSON.parse(io.out()) as ProbeCommandResult;
    expect(r.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect([r.trainImages, r.testImages]).toEqual([loadSvhn(root, { split: 'train' }).length, loadSvhn(root, { split: 'test' }).length]);
    expect(r.chance.top1).toBeCloseTo(0.1, 10);
    expect(r.probe.top1).toBeGreaterThanOrEqual(0);
    expect(r.probe.top1).toBeLessThanOrEqual(1);
  });

  it('exits 2 naming the problem for a folder without test/, a bad --shots and a CSV without splits', async () => {
    await mkdir(join(dir, 'only-train', 'train', 'a'), { recursive: true });
    await png(join(dir, 'only-train', 'train', 'a', '0.png'), RED);
    let io = captureIO();
    expect(await runCli(['probe', '--checkpoint', ckpt, '--dataset', 'imagefolder', '--root', join(dir, 'only-train'), '--backend', 'cpu'], io)).toBe(2);
    expect(io.err()).toMatch(/only-train\/test/);
    io = captureIO();
    expect(await runCli(['probe', '--checkpoint', ckpt, '--dataset', 'cifar10', '--root', dir, '--shots', '1,x'], io)).toBe(2);
    expect(io.err()).toMatch(/--shots/);
    await mkdir(join(dir, 'csv-nosplit'), { recursive: true });
    await png(join(dir, 'csv-nosplit', 'a.png'), RED);
    await writeFile(join(dir, 'csv-nosplit', 'captions.csv'), 'image,caption\na.png,red\n');
    io = captureIO();
    expect(await runCli(['probe', '--checkpoint', ckpt, '--dataset', 'csv', '--root', join(dir, 'csv-nosplit'), '--backend', 'cpu'], io)).toBe(2);
    expect(io.err()).toMatch(/split 'train' and 'test'/);
  });
});
