import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import type { DataStatsResult } from '../src/commands/data-stats.js';

// The real bert-base-uncased tokenizer.json vendored by @clip-ts/encoders' tests.
const SVHN = fileURLToPath(new URL('../../clip-data/test/fixtures/svhn/good', import.meta.url));
const TOKENIZER = fileURLToPath(new URL('../../clip-encoders/test/fixtures/tokenizer/tokenizer.json', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'clip-data-stats-'));
  const jpeg = await sharp(Buffer.alloc(8 * 8 * 3, 90), { raw: { width: 8, height: 8, channels: 3 } }).jpeg().toBuffer();
  // Flickr8k: captions.txt (CSV) + split lists + images/.
  const fl = path.join(dir, 'flickr');
  mkdirSync(path.join(fl, 'images'), { recursive: true });
  const lines = ['image,caption'];
  const split: Record<string, string[]> = { train: [], dev: [], test: [] };
  ['train', 'train', 'train', 'dev', 'test'].forEach((s, i) => {
    const name = `${i}_x.jpg`;
    writeFileSync(path.join(fl, 'images', name), jpeg);
    split[s]?.push(name);
    for (let k = 0; k < 5; k++) lines.push(`${name},"A dog, number ${i}, runs ${'very '.repeat(k)}fast ."`);
  });
  writeFileSync(path.join(fl, 'captions.txt'), lines.join('\n') + '\n');
  for (const s of ['train', 'dev', 'test']) writeFileSync(path.join(fl, `Flickr_8k.${s}Images.txt`), (split[s] ?? []).join('\n') + '\n');
  // CIFAR-10 and CIFAR-100 binary.
  const c10 = path.join(dir, 'cifar-10-batches-bin');
  mkdirSync(c10);
  for (let b = 1; b <= 5; b++) writeFileSync(path.join(c10, `data_batch_${b}.bin`), Buffer.alloc(2 * 3073, b));
  writeFileSync(path.join(c10, 'test_batch.bin'), Buffer.alloc(3 * 3073, 0));
  writeFileSync(path.join(c10, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
  const c100 = path.join(dir, 'cifar-100-binary');
  mkdirSync(c100);
  writeFileSync(path.join(c100, 'train.bin'), Buffer.alloc(4 * 3074, 1));
  writeFileSync(path.join(c100, 'test.bin'), Buffer.alloc(2 * 3074, 2));
  writeFileSync(path.join(c100, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `fine_${i}`).join('\n'));
  writeFileSync(path.join(c100, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse_${i}`).join('\n'));
  // Image folder and caption CSV.
  for (const [cls, n] of [['red_apple', 2], ['pear', 1]] as const) {
    mkdirSync(path.join(dir, 'folder', cls), { recursive: true });
    for (let i = 0; i < n; i++) writeFileSync(path.join(dir, 'folder', cls, `${i}.jpg`), jpeg);
  }
  mkdirSync(path.join(dir, 'custom'));
  writeFileSync(path.join(dir, 'custom', 'a.jpg'), jpeg);
  writeFileSync(path.join(dir, 'custom', 'b.jpg'), jpeg);
  writeFileSync(path.join(dir, 'custom', 'captions.csv'), 'image,caption,split\na.jpg,one,train\na.jpg,two,train\nb.jpg,three,val\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(['data', 'stats', ...args], { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

async function json(args: string[]): Promise<DataStatsResult> {
  const r = await run([...args, '--json']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as DataStatsResult;
}

describe('clip data stats', () => {
  it('flickr8k: images and captions per split, token lengths with a real tokenizer', async () => {
    const r = await json(['--dataset', 'flickr8k', '--root', path.join(dir, 'flickr'), '--tokenizer', TOKENIZER, '--max-length', '12']);
    expect(r.splits.map((s) => [s.split, s.images, s.captions])).toEqual([
      ['train', 3, 15],
      ['val', 1, 5],
      ['test', 1, 5],
    ]);
    const t = r.splits[0]?.tokenLengths;
    // "a dog , number 0 , runs fast ." = 9 word pieces + [CLS] [SEP] = 11; each "very " adds one: 11..15.
    expect(t).toMatchObject({ min: 11, max: 15, median: 13, maxLength: 12, overMaxLength: 9 });
    expect(t?.p90).toBeCloseTo(15, 5);
    expect(r.maxLength).toBe(12);
  });

  it('prints a table, and the same numbers without a tokenizer', async () => {
    const r = await run(['--dataset', 'flickr8k', '--root', path.join(dir, 'flickr')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\| split +\| images \| captions \| classes \|/);
    expect(r.out).toMatch(/\| train +\| +3 \| +15 \|/);
    expect(r.out).toContain('--tokenizer');
  });

  it('cifar10 / cifar100 (fine, coarse): counts and class names', async () => {
    const c10 = await json(['--dataset', 'cifar10', '--root', dir]);
    expect(c10.splits.map((s) => [s.split, s.images, s.classes])).toEqual([
      ['train', 10, 10],
      ['test', 3, 10],
    ]);
    expect(c10.splits[0]?.classNames).toContain('automobile');
    expect(c10.splits[1]?.classCounts?.[0]).toBe(3);
    const fine = await json(['--dataset', 'cifar100', '--root', dir]);
    expect(fine.splits[0]?.classes).toBe(100);
    expect(fine.splits[0]?.classNames?.[1]).toBe('fine 1');
    const coarse = await json(['--dataset', 'cifar100', '--root', dir, '--labels', 'coarse']);
    expect(coarse.splits[0]?.classes).toBe(20);
    const table = await run(['--dataset', 'cifar10', '--root', dir]);
    expect(table.out).toContain('Class names (10): airplane, automobile');
  });

  it('svhn: every split file present, digits 0..9 (label 10 counted as digit 0)', async () => {
    const r = await json(['--dataset', 'svhn', '--root', SVHN]);
    expect(r.splits.map((s) => [s.split, s.images, s.classes])).toEqual([
      ['train', 7, 10],
      ['test', 12, 10],
      ['extra', 3, 10],
    ]);
    expect(r.splits[1]?.classCounts).toEqual([2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(r.splits[2]?.classCounts).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    const none = await run(['--dataset', 'svhn', '--root', dir]);
    expect(none.code).toBe(2);
    expect(none.err).toContain('none of train_32x32.mat, test_32x32.mat, extra_32x32.mat found');
  });

  it('imagefolder, csv (per split column) and the generated shapes set', async () => {
    const f = await json(['--dataset', 'imagefolder', '--root', path.join(dir, 'folder')]);
    expect(f.splits[0]).toMatchObject({ images: 3, classes: 2, classNames: ['pear', 'red apple'], classCounts: [1, 2] });
    const c = await json(['--dataset', 'csv', '--root', path.join(dir, 'custom', 'captions.csv')]);
    expect(c.splits.map((s) => [s.split, s.images, s.captions])).toEqual([
      ['train', 1, 2],
      ['val', 1, 1],
    ]);
    const s = await json(['--dataset', 'shapes', '--tokenizer', TOKENIZER]);
    expect(s.splits.map((x) => x.split)).toEqual(['train', 'val', 'test', 'heldOut']);
    expect(s.splits[0]?.captions).toBe(5 * (s.splits[0]?.images ?? 0));
    expect(s.splits[0]?.classes).toBe(30);
    expect(s.splits[0]?.tokenLengths?.max).toBeLessThan(20);
  });

  it('bad input: exit 2 with the file and line; missing --root; unknown dataset', async () => {
    writeFileSync(path.join(dir, 'custom', 'bad.csv'), 'image,caption\na.jpg,ok\n../etc/passwd,x\n');
    const bad = await run(['--dataset', 'csv', '--root', path.join(dir, 'custom', 'bad.csv')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/bad\.csv:3: image name '\.\.\/etc\/passwd' contains '\.\.'/);
    const noRoot = await run(['--dataset', 'cifar10']);
    expect(noRoot.code).toBe(2);
    expect(noRoot.err).toContain('needs --root');
    const unknown = await run(['--dataset', 'mnist', '--root', dir]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/--dataset: must be one of flickr8k/);
  });

  it('reports duplicates on stderr, keeping stdout for the result', async () => {
    const fl = path.join(dir, 'flickr');
    writeFileSync(path.join(fl, 'Flickr_8k.devImages.txt'), '3_x.jpg\n3_x.jpg\n');
    const r = await run(['--dataset', 'flickr8k', '--root', fl, '--json']);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/warning: .*devImages\.txt: 1 duplicate image name\(s\) ignored: 3_x\.jpg \(line 2\)/);
    const parsed = JSON.parse(r.out) as DataStatsResult;
    expect(parsed.warnings).toHaveLength(1);
    expect(parsed.splits[1]?.images).toBe(1);
  });
});
