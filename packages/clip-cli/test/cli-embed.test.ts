import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '@clip-ts/core/node';
import { runCli } from '../src/cli.js';
import { captureIO, writeTinyCheckpoint } from './helpers/tiny-checkpoint.js';

let dir: string;
let ckpt: string;
let images: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-embed-'));
  ckpt = await writeTinyCheckpoint(join(dir, 'ckpt'));
  images = [];
  for (const [i, rgb] of [[255, 0, 0], [0, 0, 255]].entries()) {
    const file = join(dir, `img${i}.png`);
    await sharp({ create: { width: 20, height: 12, channels: 3, background: { r: rgb[0] ?? 0, g: rgb[1] ?? 0, b: rgb[2] ?? 0 } } }).png().toFile(file);
    images.push(file);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('clip embed', () => {
  it('writes L2-normalised text embeddings to safetensors with the inputs in the metadata', async () => {
    const io = captureIO();
    const out = join(dir, 'texts.safetensors');
    const before = tf.memory().numTensors;
    const code = await runCli(['embed', '--checkpoint', ckpt, '--texts', 'a red circle', 'a blue square', 'a dog', '--out', out, '--backend', 'cpu', '--json'], io);
    expect(io.err()).not.toContain('error');
    expect(code).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    expect(JSON.parse(io.out())).toEqual({ kind: 'text', count: 3, dim: 8, out, format: 'safetensors' });
    const file = await readSafetensors(out);
    const t = file.tensors.get('embeddings');
    expect(t?.shape).toEqual([3, 8]);
    expect(JSON.parse(file.metadata?.inputs ?? '[]')).toEqual(['a red circle', 'a blue square', 'a dog']);
    for (let r = 0; r < 3; r++) {
      const row = Array.from((t?.data as Float32Array).subarray(r * 8, r * 8 + 8));
      expect(Math.hypot(...row)).toBeCloseTo(1, 5);
    }
    // Different texts embed differently (a model that ignored its input would not).
    const d = t?.data as Float32Array;
    expect(Array.from(d.subarray(0, 8))).not.toEqual(Array.from(d.subarray(8, 16)));
  });

  it('embeds image files to JSON; the same image embeds the same way in both formats', async () => {
    const io = captureIO();
    const outJson = join(dir, 'images.json');
    expect(await runCli(['embed', '--checkpoint', ckpt, '--images', ...images, '--out', outJson, '--backend', 'cpu'], io)).toBe(0);
    expect(io.out()).toContain('wrote 2 image embeddings of dimension 8');
    const json = JSON.parse(await readFile(outJson, 'utf8')) as { kind: string; inputs: string[]; embeddings: number[][] };
    expect(json.kind).toBe('image');
    expect(json.inputs).toEqual(images);
    expect(json.embeddings).toHaveLength(2);
    const outSt = join(dir, 'images.safetensors');
    expect(await runCli(['embed', '--checkpoint', ckpt, '--images', images[0] as string, '--out', outSt, '--backend', 'cpu'], captureIO())).toBe(0);
    const st = (await readSafetensors(outSt)).tensors.get('embeddings');
    const a = Array.from(st?.data as Float32Array);
    a.forEach((v, i) => expect(v).toBeCloseTo(json.embeddings[0]?.[i] ?? Number.NaN, 5));
  });

  it('--workers 2 splits each batch over an EmbedPool: the single-process embeddings, in input order', async () => {
    const texts = ['a red circle', 'a blue square', 'a dog', 'two cats', 'a green star'];
    const run = async (workers: string, what: readonly string[], kind: '--texts' | '--images') => {
      const out = join(dir, `pool-${workers}-${kind.slice(2)}.json`);
      const io = captureIO();
      expect(await runCli(['embed', '--checkpoint', ckpt, kind, ...what, '--out', out, '--backend', 'cpu', '--batch-size', '3', '--workers', workers], io)).toBe(0);
      if (workers !== '1') expect(io.err()).toContain(`${workers} replicas`);
      return (JSON.parse(await readFile(out, 'utf8')) as { embeddings: number[][] }).embeddings;
    };
    const before = tf.memory().numTensors;
    for (const [kind, what] of [['--texts', texts], ['--images', [...images, images[1] as string, images[0] as string]]] as const) {
      const one = await run('1', what, kind);
      const two = await run('2', what, kind);
      expect(two).toHaveLength(what.length);
      two.forEach((row, r) => row.forEach((v, i) => expect(Math.abs(v - (one[r]?.[i] ?? Number.NaN))).toBeLessThan(1e-5)));
    }
    expect(tf.memory().numTensors).toBe(before);
    const bad = captureIO();
    expect(await runCli(['embed', '--checkpoint', ckpt, '--texts', 'x', '--out', join(dir, 'x.json'), '--workers', 'many'], bad)).toBe(2);
    expect(bad.err()).toContain('--workers');
  });

  it('rejects bad usage with exit code 2 and a message', async () => {
    const both = captureIO();
    expect(await runCli(['embed', '--checkpoint', ckpt, '--texts', 'x', '--images', images[0] as string, '--out', join(dir, 'x.json')], both)).toBe(2);
    expect(both.err()).toContain('not both');
    const ext = captureIO();
    expect(await runCli(['embed', '--checkpoint', ckpt, '--texts', 'x', '--out', join(dir, 'x.npy')], ext)).toBe(2);
    expect(ext.err()).toContain('.safetensors or .json');
    const missing = captureIO();
    expect(await runCli(['embed', '--checkpoint', join(dir, 'nope'), '--texts', 'x', '--out', join(dir, 'x.json'), '--backend', 'cpu'], missing)).toBe(2);
    // Says the directory is not there (not which file of it is missing).
    expect(missing.err()).toContain(`${join(dir, 'nope')}: the checkpoint directory does not exist`);
  });
});
