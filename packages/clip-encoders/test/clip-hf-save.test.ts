import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, CLIPModel, initBackend, ProjectionHead } from '@clip-ts/core';
import { readSafetensors, readSafetensorsHeader, saveCLIPModel } from '@clip-ts/core/node';
import { ViTModel, DistilBertModel, CLIPTextModel, CLIPVisionModel, clipPreprocessorConfigFor, hfCLIPConfig, isHFCLIPModel, optionsFromPreprocessorConfig } from '@clip-ts/encoders';
import { loadCLIPTokenizer, loadHFCLIPModel, saveHFCLIPModel } from '@clip-ts/encoders/node';
import { fixtureDir, readIO, toTensor } from './helpers.js';

// Debian's python3-torch: the saved files are also read by PyTorch (gen/check_hf_clip_save.py). .ci/run installs
// it, so in CI (CI=true) a missing torch fails this test instead of skipping it; elsewhere it runs when present.
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const CHECK_SCRIPT = join(import.meta.dirname, 'gen', 'check_hf_clip_save.py');

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clip-hf-save-'));
  dirs.push(d);
  return d;
}

const readJsonFile = async (file: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;

/** Every output the fixture inputs give: embeddings of both towers and the logits, as plain arrays. */
async function outputsOf(model: CLIPModel, name: string): Promise<Float32Array[]> {
  const io = await readIO(name);
  const px = toTensor(io.get('pixel_values')) as tf.Tensor4D;
  const text = { inputIds: toTensor(io.get('input_ids')) as tf.Tensor2D, attentionMask: toTensor(io.get('attention_mask')) as tf.Tensor2D };
  const img = model.encodeImages(px);
  const txt = model.encodeTexts(text);
  const { logitsPerImage, logitsPerText } = model.logits(px, text);
  const out = await Promise.all([img, txt, logitsPerImage].map(async (t) => (await t.data()) as Float32Array));
  tf.dispose([px, text.inputIds, text.attentionMask, img, txt, logitsPerImage, logitsPerText]);
  return out;
}

beforeAll(async () => {
  await initBackend('cpu');
});
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('saveHFCLIPModel', () => {
  it('clip-tiny: load → save → load gives identical outputs, and the files match the fixture', async () => {
    const src = fixtureDir('clip-tiny');
    const model = await loadHFCLIPModel(src);
    const dir = await tempDir();
    const processor = optionsFromPreprocessorConfig(await readJsonFile(join(src, 'preprocessor_config.json')), 'fixture');
    await saveHFCLIPModel(model, dir, { tokenizerDir: src, preprocessorConfig: clipPreprocessorConfigFor(processor) });
    const again = await loadHFCLIPModel(dir);
    try {
      const [a, b] = [await outputsOf(model, 'clip-tiny'), await outputsOf(again, 'clip-tiny')];
      a.forEach((arr, i) => expect(b[i]).toEqual(arr));

      // Keys, shapes and dtypes as the fixture stores them (no position_ids: transformers ≥ 4.31 drops them).
      const want = (await readSafetensorsHeader(join(src, 'model.safetensors'))).tensors;
      const got = (await readSafetensorsHeader(join(dir, 'model.safetensors'))).tensors;
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [k, info] of want) {
        expect(got.get(k)?.shape, k).toEqual(info.shape);
        expect(got.get(k)?.dtype, k).toBe(info.dtype);
      }
      expect((await readSafetensorsHeader(join(dir, 'model.safetensors'))).metadata).toEqual({ format: 'pt' });
      // F32 → F32: the values are the stored ones, bit for bit.
      const wantValues = (await readSafetensors(join(src, 'model.safetensors'))).tensors;
      const gotValues = (await readSafetensors(join(dir, 'model.safetensors'))).tensors;
      for (const [k, t] of wantValues) expect(gotValues.get(k)?.data, k).toEqual(t.data);

      // config.json: every field the fixture has, with the fixture's value (the towers' full configs).
      const wantConfig = await readJsonFile(join(src, 'config.json'));
      const gotConfig = await readJsonFile(join(dir, 'config.json'));
      for (const key of ['architectures', 'model_type', 'projection_dim', 'logit_scale_init_value', 'torch_dtype', 'initializer_factor']) {
        expect(gotConfig[key], key).toEqual(wantConfig[key]);
      }
      for (const tower of ['text_config', 'vision_config']) {
        const w = wantConfig[tower] as Record<string, unknown>;
        const g = gotConfig[tower] as Record<string, unknown>;
        for (const key of Object.keys(w)) expect(g[key], `${tower}.${key}`).toEqual(w[key]);
      }

      // The tokenizer files are copied as they are; the preprocessor config reproduces CLIPImageProcessor's.
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
        expect(await readFile(join(dir, f), 'utf8'), f).toBe(await readFile(join(src, f), 'utf8'));
      }
      expect(await readJsonFile(join(dir, 'preprocessor_config.json'))).toEqual(await readJsonFile(join(src, 'preprocessor_config.json')));
      const tok = await loadCLIPTokenizer(dir);
      expect(tok.maxLength).toBe(77);
    } finally {
      model.dispose();
      again.dispose();
    }
  });

  it('clip-tiny-gelu (F16): saves as F32 by default (lossless from the float32 weights), or as F16 bit-identical to the fixture', async () => {
    const src = fixtureDir('clip-tiny-gelu');
    const model = await loadHFCLIPModel(src);
    const f32 = await tempDir();
    const f16 = await tempDir();
    await saveHFCLIPModel(model, f32);
    await saveHFCLIPModel(model, f16, { dtype: 'F16' });
    try {
      const fixtureBytes = await readFile(join(src, 'model.safetensors'));
      const want = await readSafetensors(join(src, 'model.safetensors'));
      const asF32 = await readSafetensors(join(f32, 'model.safetensors'));
      for (const [k, t] of want.tensors) {
        expect(asF32.tensors.get(k)?.storedDtype, k).toBe('F32');
        expect(asF32.tensors.get(k)?.data, k).toEqual(t.data);
      }
      expect((await readJsonFile(join(f32, 'config.json'))).torch_dtype).toBe('float32');
      expect((await readJsonFile(join(f16, 'config.json'))).torch_dtype).toBe('float16');
      // Same keys, shapes, dtype and values → the same data region as the fixture's (its layout is the reference writer's too).
      const wantHeader = await readSafetensorsHeader(join(src, 'model.safetensors'));
      const gotHeader = await readSafetensorsHeader(join(f16, 'model.safetensors'));
      const got16 = await readFile(join(f16, 'model.safetensors'));
      for (const [k, info] of wantHeader.tensors) {
        const g = gotHeader.tensors.get(k);
        expect(g?.dtype, k).toBe('F16');
        const slice = (buf: Buffer, start: number, r: [number, number]) => buf.subarray(start + r[0], start + r[1]);
        expect(Buffer.compare(slice(got16, gotHeader.dataStart, g!.dataOffsets), slice(fixtureBytes, wantHeader.dataStart, info.dataOffsets)), k).toBe(0);
      }
      const reloaded = await loadHFCLIPModel(f16);
      try {
        const [a, b] = [await outputsOf(model, 'clip-tiny-gelu'), await outputsOf(reloaded, 'clip-tiny-gelu')];
        a.forEach((arr, i) => expect(b[i]).toEqual(arr));
      } finally {
        reloaded.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  it('a model that is not an HF CLIP is refused (and keeps saving as clip-ts)', async () => {
    const vit = new ViTModel({ model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 20, image_size: 16, patch_size: 8 });
    const bert = new DistilBertModel({ model_type: 'distilbert', vocab_size: 50, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 20, max_position_embeddings: 16 });
    const model = new CLIPModel({ imageEncoder: vit, textEncoder: bert, projectionDim: 8 });
    try {
      expect(isHFCLIPModel(model)).toBe(false);
      expect(() => hfCLIPConfig(model)).toThrow(CheckpointError);
      const dir = await tempDir();
      await expect(saveHFCLIPModel(model, dir)).rejects.toThrow(/not an HF CLIP.*saveCLIPModel/);
      await saveCLIPModel(model, dir);
      expect((await readJsonFile(join(dir, 'config.json'))).model_type).toBe('clip-ts');
    } finally {
      model.dispose();
    }
  });

  it('a SigLIP-trained CLIP (it has a logit_bias HF CLIPModel lacks) is refused rather than saved without it', async () => {
    const model = new CLIPModel({
      imageEncoder: new CLIPVisionModel({ model_type: 'clip_vision_model', hidden_size: 16, intermediate_size: 20, num_hidden_layers: 1, num_attention_heads: 2, image_size: 16, patch_size: 8 }),
      textEncoder: new CLIPTextModel({ model_type: 'clip_text_model', vocab_size: 50, eos_token_id: 2, hidden_size: 16, intermediate_size: 20, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 16 }),
      visualProjection: new ProjectionHead({ inputDim: 16, projectionDim: 8, kind: 'linear-no-bias' }),
      textProjection: new ProjectionHead({ inputDim: 16, projectionDim: 8, kind: 'linear-no-bias' }),
      loss: 'siglip',
    });
    try {
      expect(model.logitBias).toBeDefined();
      expect(isHFCLIPModel(model)).toBe(false);
      await expect(saveHFCLIPModel(model, await tempDir())).rejects.toThrow(/not an HF CLIP/);
    } finally {
      model.dispose();
    }
  });

  it('saving leaks no tensors', async () => {
    const model = await loadHFCLIPModel(fixtureDir('clip-tiny'));
    const dir = await tempDir();
    try {
      await saveHFCLIPModel(model, dir);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await saveHFCLIPModel(model, dir);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });

  it('a tokenizerDir without tokenizer.json is a CheckpointError naming it', async () => {
    const model = await loadHFCLIPModel(fixtureDir('clip-tiny'));
    const empty = await tempDir();
    try {
      await expect(saveHFCLIPModel(model, await tempDir(), { tokenizerDir: empty })).rejects.toThrow(new RegExp(`${empty}.*tokenizer.json`));
    } finally {
      model.dispose();
    }
  });

  it.runIf(hasTorch || Boolean(process.env.CI))('PyTorch reads the saved files: same keys/shapes/values as the fixture, loadable into CLIPModel’s module tree', async () => {
    for (const [name, dtype] of [['clip-tiny', 'F32'], ['clip-tiny-gelu', 'F16'], ['clip-tiny-gelu', 'F32']] as const) {
      const model = await loadHFCLIPModel(fixtureDir(name));
      const dir = await tempDir();
      try {
        await saveHFCLIPModel(model, dir, { dtype });
      } finally {
        model.dispose();
      }
      const r = spawnSync(PYTHON, [CHECK_SCRIPT, dir, fixtureDir(name)], { encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`, `${name} ${dtype}`).toBe('ok\n');
      expect(r.status).toBe(0);
    }
    // The script is not vacuous: a different model's files fail it.
    const other = spawnSync(PYTHON, [CHECK_SCRIPT, fixtureDir('clip-tiny-gelu'), fixtureDir('clip-tiny')], { encoding: 'utf8' });
    expect(other.status).toBe(1);
  }, 120_000);
});
