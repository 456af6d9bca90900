import { mkdtemp, rm, writeFile, copyFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ConfigError, initBackend, serializeSafetensors, type EncoderConfig, type WritableTensor } from '@clip-ts/core';
import { ViTModel } from '@clip-ts/encoders';
import { loadEncoderFromDir } from '@clip-ts/encoders/node';
import { fixtureDir } from './helpers.js';

let tmp: string;

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(path.join(tmpdir(), 'hf-load-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A checkpoint dir with `config` and these F32 tensors. */
async function makeDir(name: string, config: unknown, tensors: Record<string, WritableTensor> | null): Promise<string> {
  const dir = path.join(tmp, name);
  await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
  await writeFile(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  if (tensors) await writeFile(path.join(dir, 'model.safetensors'), serializeSafetensors(tensors));
  return dir;
}

const VIT = { model_type: 'vit', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, image_size: 4, patch_size: 2 };

/** An HF-layout state dict of a fresh tower, as writable F32 tensors (optionally prefixed). */
function stateDictOf(config: EncoderConfig, prefix = ''): Record<string, WritableTensor> {
  const m = new ViTModel(config, { seed: 1 });
  const out: Record<string, WritableTensor> = {};
  for (const [k, t] of m.stateDict()) {
    out[prefix + k] = { dtype: 'F32', shape: t.shape, data: t.dataSync() as Float32Array };
    t.dispose();
  }
  m.dispose();
  return out;
}

describe('loadEncoderFromDir', () => {
  it('unknown model_type → ConfigError naming config.json', async () => {
    const dir = await makeDir('bert', { model_type: 'bert' }, null);
    await expect(loadEncoderFromDir(dir)).rejects.toThrow(ConfigError);
    await expect(loadEncoderFromDir(dir)).rejects.toThrow(/config\.json: unsupported model_type "bert"/);
  });

  it('invalid config → ConfigError with the file and key; bad JSON → ConfigError', async () => {
    const dir = await makeDir('badcfg', { ...VIT, num_attention_heads: 0 }, null);
    await expect(loadEncoderFromDir(dir)).rejects.toThrow(/badcfg\/config\.json: invalid ViT config:\nnum_attention_heads/);
    const dir2 = await makeDir('badjson', '{"model_type": ', null);
    await expect(loadEncoderFromDir(dir2)).rejects.toThrow(/badjson\/config\.json: invalid JSON/);
  });

  it('no weights file → CheckpointError', async () => {
    const dir = await makeDir('noweights', VIT, null);
    await expect(loadEncoderFromDir(dir)).rejects.toThrow(/no model\.safetensors or model\.safetensors\.index\.json/);
  });

  it('missing keys → CheckpointError listing all of them', async () => {
    const sd = stateDictOf(VIT);
    delete sd['encoder.layer.0.attention.attention.key.weight'];
    delete sd['layernorm.bias'];
    const dir = await makeDir('missing', VIT, sd);
    const err = await loadEncoderFromDir(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/missing 2 weight\(s\): encoder\.layer\.0\.attention\.attention\.key\.weight, layernorm\.bias/);
    expect((err as Error).message).toContain(path.join(dir, 'model.safetensors'));
  });

  it('shape mismatch → CheckpointError naming the key and both shapes', async () => {
    const sd = stateDictOf({ ...VIT, intermediate_size: 12 }, 'vit.');
    const dir = await makeDir('shape', VIT, sd);
    await expect(loadEncoderFromDir(dir)).rejects.toThrow(
      /encoder\.layer\.0\.intermediate\.dense\.weight: checkpoint has shape \[12, 8\], the model expects \[8, 8\]/,
    );
  });

  it('prefixed keys load; pooler kept only when present; options pick the feature', async () => {
    const sd = stateDictOf({ ...VIT, add_pooling_layer: true }, 'vision_model.');
    sd['classifier.weight'] = { dtype: 'F32', shape: [2, 8], data: new Float32Array(16) };
    const dir = await makeDir('prefixed', VIT, sd);
    const a = await loadEncoderFromDir(dir);
    expect(a.kind).toBe('image');
    expect((a.encoder as ViTModel).hasPooler).toBe(true);
    a.encoder.dispose();
    const b = await loadEncoderFromDir(dir, { pooler: false });
    expect((b.encoder as ViTModel).hasPooler).toBe(false);
    b.encoder.dispose();
    const noPooler = await loadEncoderFromDir(fixtureDir('vit-tiny-classifier-fp16'), { feature: 'pooler' }).catch((e: unknown) => e);
    expect((noPooler as Error).message).toMatch(/missing 2 weight\(s\): pooler\.dense\.weight, pooler\.dense\.bias/);
  });

  it('sharded checkpoint: a shard that is missing is named', async () => {
    const dir = path.join(tmp, 'shards');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const src = fixtureDir('vit-variant');
    for (const f of ['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors']) {
      await copyFile(path.join(src, f), path.join(dir, f));
    }
    await expect(loadEncoderFromDir(dir)).rejects.toThrow(/shard model-00002-of-00002\.safetensors \(holding .*\) does not exist/);
    const index = JSON.parse(await readFile(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as object;
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ ...index, weight_map: 3 }));
    await expect(loadEncoderFromDir(dir)).rejects.toThrow(/model\.safetensors\.index\.json: invalid index:\nweight_map/);
  });

  it('leaves no tensors behind on failure', async () => {
    const before = tf.memory().numTensors;
    const sd = stateDictOf(VIT);
    delete sd['layernorm.bias'];
    const dir = await makeDir('leak', VIT, sd);
    await expect(loadEncoderFromDir(dir)).rejects.toThrow(CheckpointError);
    expect(tf.memory().numTensors).toBe(before);
  });
});
