import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeSafetensors } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { writeFile } from 'node:fs/promises';
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
});
