import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeSafetensors } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { runCli } from '../src/cli.js';

// The HF-layout fixtures vendored by @clip-ts/encoders (copied from shared/fixtures or made by its
// test/gen/make_variants.py): each dir has io.safetensors with the inputs and the reference outputs.
const FIXTURES = fileURLToPath(new URL('../../clip-encoders/test/fixtures/hf/', import.meta.url));
const TOL = 1e-4; // float32 vs the float64 reference (shared/fixtures/README.md)

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'clip-forward-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function captureIO() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const CASES = [
  { dir: 'vit-tiny', backend: 'cpu', outputs: ['last_hidden_state', 'pooler_output'] },
  { dir: 'vit-tiny-classifier-fp16', backend: 'wasm', outputs: ['last_hidden_state'] },
  { dir: 'vit-variant', backend: 'cpu', outputs: ['last_hidden_state', 'pooler_output'] },
  { dir: 'distilbert-tiny', backend: 'wasm', outputs: ['last_hidden_state'] },
  { dir: 'distilbert-variant', backend: 'cpu', outputs: ['last_hidden_state'] },
];

describe('clip forward', () => {
  it.each(CASES)('$dir on $backend reproduces io.safetensors within 1e-4', async ({ dir, backend, outputs }) => {
    const model = path.join(FIXTURES, dir);
    const io = path.join(model, 'io.safetensors');
    const outFile = path.join(tmp, `${dir}.safetensors`);
    const { out, io: cliIO } = captureIO();
    const code = await runCli(['forward', '--model', model, '--inputs', io, '--out', outFile, '--backend', backend], cliIO);
    expect(out.stderr).toContain(`backend: ${backend}`);
    expect(code).toBe(0);
    expect(out.stdout).toContain('last_hidden_state [');
    const got = (await readSafetensors(outFile)).tensors;
    const want = (await readSafetensors(io)).tensors;
    expect([...got.keys()].sort()).toEqual([...outputs].sort());
    for (const name of outputs) {
      expect(got.get(name)!.storedDtype).toBe('F32');
      expect(got.get(name)!.shape).toEqual(want.get(name)!.shape);
      expect(maxAbs(got.get(name)!.data, want.get(name)!.data)).toBeLessThan(TOL);
    }
  });

  it('bad inputs exit 2 with a message naming the file and tensor', async () => {
    const bad = path.join(tmp, 'bad.safetensors');
    await writeFile(bad, serializeSafetensors({ pixels: { dtype: 'F32', shape: [1, 3, 32, 32], data: new Float32Array(3072) } }));
    const { out, io } = captureIO();
    const code = await runCli(['forward', '--model', path.join(FIXTURES, 'vit-tiny'), '--inputs', bad, '--out', path.join(tmp, 'x.safetensors'), '--backend', 'cpu'], io);
    expect(code).toBe(2);
    expect(out.stderr).toMatch(/bad\.safetensors: no tensor 'pixel_values' \(it holds: pixels\)/);

    const small = path.join(tmp, 'small.safetensors');
    await writeFile(small, serializeSafetensors({ pixel_values: { dtype: 'F32', shape: [1, 3, 16, 16], data: new Float32Array(768) } }));
    const r = captureIO();
    expect(await runCli(['forward', '--model', path.join(FIXTURES, 'vit-tiny'), '--inputs', small, '--out', path.join(tmp, 'y.safetensors'), '--backend', 'cpu'], r.io)).toBe(2);
    expect(r.out.stderr).toMatch(/image size 16x16.*image_size 32x32/);
  });

  it('--threads takes a whole number ≥ 1; anything else is a usage error naming the flag', async () => {
    for (const bad of ['0', 'many', '1.5']) {
      const { out, io } = captureIO();
      const args = ['forward', '--model', path.join(FIXTURES, 'vit-tiny'), '--inputs', 'x', '--out', 'y', '--threads', bad];
      expect(await runCli(args, io)).toBe(2);
      expect(out.stderr).toMatch(/--threads: invalid thread count/);
    }
  });
});

const CLIP_OUTPUTS = [
  'text_embeds',
  'image_embeds',
  'text_embeds_normalized',
  'image_embeds_normalized',
  'logits_per_image',
  'logits_per_text',
  'text_last_hidden_state',
  'text_pooler_output',
  'vision_last_hidden_state',
  'vision_pooler_output',
];

async function runForward(
  model: string,
  inputs: string,
  out: string,
  backend: string,
  extra: string[] = [],
): Promise<Map<string, { data: ArrayLike<number>; shape: number[]; storedDtype: string }>> {
  const { out: o, io } = captureIO();
  const code = await runCli(['forward', '--model', model, '--inputs', inputs, '--out', out, '--backend', backend, ...extra], io);
  expect(o.stderr).toContain(`backend: ${backend}`);
  const threads = extra[extra.indexOf('--threads') + 1];
  if (threads !== undefined) expect(o.stderr).toContain(`, ${threads} thread${threads === '1' ? '' : 's'})`);
  expect(code, o.stderr).toBe(0);
  return (await readSafetensors(out)).tensors;
}

describe('clip forward on HF CLIP repos', () => {
  it.each([
    { dir: 'clip-tiny', backend: 'cpu' },
    { dir: 'clip-tiny-gelu', backend: 'wasm' },
    { dir: 'clip-tiny-gelu', backend: 'wasm', threads: '2' },
    { dir: 'clip-tiny', backend: 'wasm', threads: '1' },
  ])('$dir (CLIPModel) on $backend (threads: $threads) reproduces every output of io.safetensors within 1e-4', async ({ dir, backend, threads }) => {
    const io = path.join(FIXTURES, dir, 'io.safetensors');
    const extra = threads === undefined ? [] : ['--threads', threads];
    const got = await runForward(path.join(FIXTURES, dir), io, path.join(tmp, `${dir}-${threads ?? ''}.safetensors`), backend, extra);
    const want = (await readSafetensors(io)).tensors;
    expect([...got.keys()].sort()).toEqual([...CLIP_OUTPUTS].sort());
    for (const name of CLIP_OUTPUTS) {
      expect(got.get(name)!.storedDtype).toBe('F32');
      expect(got.get(name)!.shape, name).toEqual(want.get(name)!.shape);
      expect(maxAbs(got.get(name)!.data, want.get(name)!.data), name).toBeLessThan(TOL);
    }
  });

  it('single-tower repos (HF CLIPVisionModel / CLIPTextModel layouts) give the towers’ outputs', async () => {
    const src = path.join(FIXTURES, 'clip-tiny');
    const config = JSON.parse(await readFile(path.join(src, 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    const weights = (await readSafetensors(path.join(src, 'model.safetensors'))).tensors;
    const io = path.join(src, 'io.safetensors');
    const want = (await readSafetensors(io)).tensors;
    for (const [tower, prefix, key] of [
      ['vision', 'vision_model.', 'vision_config'],
      ['text', 'text_model.', 'text_config'],
    ] as const) {
      const dir = path.join(tmp, `clip-${tower}-tower`);
      await mkdir(dir, { recursive: true });
      const archs = tower === 'vision' ? 'CLIPVisionModel' : 'CLIPTextModel';
      await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config[key], architectures: [archs] }));
      const own = [...weights].filter(([k]) => k.startsWith(prefix));
      await writeFile(
        path.join(dir, 'model.safetensors'),
        serializeSafetensors(new Map(own.map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data as Float32Array }])), { format: 'pt' }),
      );
      const got = await runForward(dir, io, path.join(tmp, `${tower}-out.safetensors`), 'cpu');
      expect([...got.keys()].sort()).toEqual(['last_hidden_state', 'pooler_output']);
      expect(maxAbs(got.get('last_hidden_state')!.data, want.get(`${tower}_last_hidden_state`)!.data)).toBeLessThan(TOL);
      expect(maxAbs(got.get('pooler_output')!.data, want.get(`${tower}_pooler_output`)!.data)).toBeLessThan(TOL);
    }
  });
});
