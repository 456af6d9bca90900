import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, referenceConfig } from '../src/reproduce.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-repro-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function capture() {
  let out = '';
  let err = '';
  return { io: { stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t) }, out: () => out, err: () => err };
}

describe('reference config', () => {
  it('is the reference experiment', () => {
    const c = referenceConfig({ mode: 'frozen', data: 'D', vit: 'V', bert: 'B', out: 'O', backend: 'tensorflow-gpu' });
    expect(c.model).toMatchObject({ vision: { pretrained: 'V' }, text: { pretrained: 'B' }, projectionDim: 256, head: 'linear', freeze: 'towers' });
    expect(c.data).toMatchObject({ dataset: { kind: 'flickr8k', root: 'D' }, tokenizer: 'B', maxLength: 40, batchSize: 32, imageSize: 224 });
    expect(c.optim).toEqual({ name: 'adam', lr: 1e-4 });
    expect(c.schedule).toEqual({ epochs: 30, reduceLROnPlateau: { factor: 0.5, patience: 2 }, earlyStopping: { patience: 5 } });
    expect(c.seed).toBe(42);
    expect(referenceConfig({ mode: 'finetuned', data: 'D', vit: 'V', bert: 'B', out: 'O', backend: 'cpu' }).model?.freeze).toBe('none');
  });
});

describe.each(['finetuned', 'frozen'] as const)('reproduce %s --dry-run', (mode) => {
  it('trains on a generated Flickr8k with tiny HF towers and leaves a self-contained best checkpoint', async () => {
    const out = join(dir, mode);
    const c = capture();
    const code = await main([mode, '--dry-run', '--out', out], c.io);
    expect(c.err()).not.toMatch(/^error/m);
    expect(code).toBe(0);
    // No GPU here: the default tensorflow-gpu backend falls back, and says so.
    expect(c.err()).toMatch(/backend 'tensorflow-gpu' is not available[\s\S]*falling back to '(wasm|cpu|tensorflow)'/);
    expect(c.out()).toMatch(/\| top-1 \| (80\.4|57\.2)% \| \d+\.\d% \|/);
    for (const f of ['results.json', 'history.csv', 'best/model.safetensors', 'best/tokenizer.json', 'best/tokenizer_config.json', 'best/preprocessor_config.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { test: { loss: number }; featureCache: boolean };
    expect(Number.isFinite(results.test.loss)).toBe(true);
    expect(results.featureCache).toBe(mode === 'frozen');
    expect(JSON.parse(await readFile(join(out, 'best/tokenizer_config.json'), 'utf8'))).toMatchObject({ model_max_length: 40 });
  });
});
