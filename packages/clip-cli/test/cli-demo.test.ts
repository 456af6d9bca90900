import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import { captureIO } from './helpers/tiny-checkpoint.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-demo-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

describe('clip demo --quick (the whole path: train from scratch, test, zero-shot)', () => {
  it('trains, prints both tables with chance levels, and writes a runnable run directory', async () => {
    const out = join(dir, 'demo');
    const io = captureIO();
    const code = await runCli(['demo', '--quick', '--out', out], io);
    expect(io.err()).not.toMatch(/unexpected error|^error:/m);
    expect(code).toBe(0);
    const text = io.out();
    expect(text).toContain('| Test loss');
    expect(text).toMatch(/Test top-1 accuracy \(in-batch, batch \d+\)/);
    expect(text).toContain('## Zero-shot on held-out (colour, shape) combinations');
    expect(text).toContain('chance 3.3%');
    expect(text).toContain('chance 16.7%');
    for (const t of ['| {} ', '| a photo of a {}.', '| a blurry photo of a {}.']) expect(text).toContain(t);
    expect(text).toMatch(/Best held-out zero-shot top-1 is \d+\.\d× chance/);
    // progress went to stderr, the results to stdout
    expect(io.err()).toContain('backend:');
    expect(text).not.toContain('backend: ');

    for (const f of ['results.json', 'history.csv', 'loss.svg', 'best/config.json', 'best/model.safetensors', 'best/tokenizer.json', 'best/preprocessor_config.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as {
      test: { loss: number; topK: Record<string, number> };
      demo: { heldOutTimesChance: number; zeroShot: { heldOutAll: { chance: number; scores: Array<{ template: string; topK: Record<string, number> }> } } };
    };
    expect(finite(results.test.loss)).toBe(true);
    expect(Object.values(results.test.topK).every(finite)).toBe(true);
    expect(results.demo.zeroShot.heldOutAll.chance).toBeCloseTo(1 / 30);
    expect(results.demo.zeroShot.heldOutAll.scores.map((s) => s.template)).toEqual(['{}', 'a photo of a {}.', 'a blurry photo of a {}.', 'ensemble of 3']);
    expect(results.demo.zeroShot.heldOutAll.scores.every((s) => finite(s.topK['1']))).toBe(true);
    expect(finite(results.demo.heldOutTimesChance)).toBe(true);
    const csv = (await readFile(join(out, 'history.csv'), 'utf8')).trim().split('\n');
    expect(csv.length).toBeGreaterThanOrEqual(2);

    // The best checkpoint is self-contained: zeroshot runs on it by itself.
    const zs = captureIO();
    expect(await runCli(['zeroshot', '--checkpoint', join(out, 'best'), '--dataset', 'shapes', '--json'], zs)).toBe(0);
    expect((JSON.parse(zs.out()) as { classNames: string[] }).classNames).toHaveLength(30);

    // A rerun replaces its own earlier run…, but not a file the user added to the directory since (issue 15, item 1).
    await writeFile(join(out, 'my-notes.txt'), 'keep me');
    expect(await runCli(['demo', '--quick', '--epochs', '1', '--out', out, '--json'], captureIO())).toBe(0);
    expect(await readFile(join(out, 'my-notes.txt'), 'utf8')).toBe('keep me');
    expect(existsSync(join(out, 'best/model.safetensors'))).toBe(true);
  });

  it('refuses to replace a directory that is not a demo run', async () => {
    const other = join(dir, 'precious');
    await mkdir(other, { recursive: true });
    await writeFile(join(other, 'notes.txt'), 'keep me');
    const io = captureIO();
    expect(await runCli(['demo', '--quick', '--out', other], io)).toBe(2);
    expect(io.err()).toContain('is not a demo run directory');
    expect(await readFile(join(other, 'notes.txt'), 'utf8')).toBe('keep me');
  });
});
