import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import {
  CheckpointError,
  CLIPModel,
  ConfigError,
  floatToBf16Bits,
  initBackend,
  serializeSafetensors,
  type TensorData,
  type WritableTensor,
} from '@clip-ts/core';
import { loadCLIPModel, readSafetensors, saveCLIPModel } from '@clip-ts/core/node';
import { loadHFCLIPModel } from '@clip-ts/encoders/node';
import { fixtureDir, maxAbsDiff, readIO, toTensor } from './helpers.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clip-hf-'));
  dirs.push(d);
  return d;
}

async function weightsOf(name: string): Promise<Map<string, TensorData>> {
  return (await readSafetensors(join(fixtureDir(name), 'model.safetensors'))).tensors;
}

function writable(t: TensorData, dtype: WritableTensor['dtype']): WritableTensor {
  return { dtype, shape: t.shape, data: t.data };
}

/** A copy of fixture `name` whose weights are `files` (file name → tensors) instead of model.safetensors. */
async function repoWith(name: string, files: Record<string, Map<string, WritableTensor>>, index?: Record<string, string>): Promise<string> {
  const dir = await tempDir();
  await copyFile(join(fixtureDir(name), 'config.json'), join(dir, 'config.json'));
  for (const [file, tensors] of Object.entries(files)) await writeFile(join(dir, file), serializeSafetensors(tensors, { format: 'pt' }));
  if (index) await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: index }));
  return dir;
}

/** logits_per_image of `model` on the fixture inputs, against io.safetensors (max abs). */
async function logitsError(model: CLIPModel, name: string): Promise<number> {
  const io = await readIO(name);
  const px = toTensor(io.get('pixel_values')) as tf.Tensor4D;
  const text = { inputIds: toTensor(io.get('input_ids')) as tf.Tensor2D, attentionMask: toTensor(io.get('attention_mask')) as tf.Tensor2D };
  const { logitsPerImage, logitsPerText } = model.logits(px, text);
  const err = maxAbsDiff(logitsPerImage, io.get('logits_per_image')!);
  tf.dispose([px, text.inputIds, text.attentionMask, logitsPerImage, logitsPerText]);
  return err;
}

beforeAll(async () => {
  await initBackend('cpu');
});
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
afterAll(() => {
  tf.disposeVariables();
});

describe('loadHFCLIPModel', () => {
  it('sharded checkpoint (an F16 and an F32 shard, an int64 position_ids buffer) loads like the single file', async () => {
    // clip-tiny-gelu's weights are F16 values, so re-storing them as F16 is lossless.
    const w = await weightsOf('clip-tiny-gelu');
    const a = new Map<string, WritableTensor>();
    const b = new Map<string, WritableTensor>();
    const index: Record<string, string> = {};
    for (const [k, t] of w) {
      const vision = k.startsWith('vision_model.');
      (vision ? a : b).set(k, writable(t, vision ? 'F16' : 'F32'));
      index[k] = vision ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors';
    }
    b.set('text_model.embeddings.position_ids', { dtype: 'I64', shape: [1, 77], data: Int32Array.from({ length: 77 }, (_, i) => i) });
    index['text_model.embeddings.position_ids'] = 'model-00002-of-00002.safetensors';
    const dir = await repoWith('clip-tiny-gelu', { 'model-00001-of-00002.safetensors': a, 'model-00002-of-00002.safetensors': b }, index);
    const model = await loadHFCLIPModel(dir);
    // logits are ≤ exp(3.4) · 1 ≈ 30: 1e-5 relative.
    expect(await logitsError(model, 'clip-tiny-gelu')).toBeLessThan(30 * 1e-5);
    model.dispose();
  });

  it('BF16 weights are decoded as stored', async () => {
    const w = await weightsOf('clip-tiny');
    const key = 'text_model.embeddings.token_embedding.weight';
    const tensors = new Map([...w].map(([k, t]) => [k, writable(t, k === key ? 'BF16' : 'F32')] as const));
    const model = await loadHFCLIPModel(await repoWith('clip-tiny', { 'model.safetensors': tensors }));
    const sd = model.stateDict();
    const loaded = sd.get(key)!.dataSync();
    const original = w.get(key)!.data;
    const bits = new Uint32Array(1);
    const f = new Float32Array(bits.buffer);
    let changed = 0;
    let wrong = 0;
    for (let i = 0; i < original.length; i++) {
      bits[0] = floatToBf16Bits(original[i] as number) << 16;
      if (loaded[i] !== f[0]) wrong++;
      if (f[0] !== original[i]) changed++;
    }
    expect(wrong).toBe(0);
    expect(changed).toBeGreaterThan(original.length / 2); // the rounding really happened
    tf.dispose([...sd.values()]);
    model.dispose();
  });

  it('a repo with only pytorch_model.bin: CheckpointError saying pickles are not loaded', async () => {
    const dir = await tempDir();
    await copyFile(join(fixtureDir('clip-tiny'), 'config.json'), join(dir, 'config.json'));
    await writeFile(join(dir, 'pytorch_model.bin'), 'not really a pickle');
    const err = await loadHFCLIPModel(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/pytorch_model\.bin, a PyTorch pickle, which clip-ts does not load/);
    expect((err as Error).message).toMatch(/model\.safetensors/);
  });

  it('bad configs and incomplete weights are typed errors naming the file and key', async () => {
    const dir = await repoWith('clip-tiny', {});
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'vit' }));
    await expect(loadHFCLIPModel(dir)).rejects.toThrow(/config\.json: not an HF CLIPModel config:\nmodel_type/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, text_config: { ...config.text_config, num_attention_heads: 5 } }));
    const bad = await loadHFCLIPModel(dir).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ConfigError);
    expect((bad as Error).message).toMatch(/config\.json: text_config: invalid CLIP text config:\nhidden_size: hidden_size 32 is not a multiple/);

    const w = await weightsOf('clip-tiny');
    const partial = new Map([...w].filter(([k]) => k !== 'text_projection.weight' && k !== 'vision_model.post_layernorm.bias').map(([k, t]) => [k, writable(t, 'F32')] as const));
    const before = tf.memory().numTensors;
    const missing = await loadHFCLIPModel(await repoWith('clip-tiny', { 'model.safetensors': partial })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CheckpointError);
    expect((missing as Error).message).toMatch(/model\.safetensors \(vision_model\.\*\): incompatible weights:\n\s+missing 1 weight\(s\): post_layernorm\.bias/);
    expect(tf.memory().numTensors).toBe(before); // the half-built model was disposed
  });

  it('saves as a clip-ts checkpoint and loadCLIPModel rebuilds it through the registry; training steps do not leak', async () => {
    const model = await loadHFCLIPModel(fixtureDir('clip-tiny'));
    const config = model.getConfig();
    expect(config.model_type).toBe('clip-ts');
    expect(config.projection_head).toBe('linear-no-bias');
    expect(config.vision_config.model_type).toBe('clip_vision_model');
    expect(config.text_config.model_type).toBe('clip_text_model');
    const names = model.namedVariables().map((v) => v.name);
    expect(names).toContain('visual_projection.weight');
    expect(names.filter((n) => n.startsWith('text_projection.'))).toEqual(['text_projection.weight']);
    const dir = await tempDir();
    await saveCLIPModel(model, dir);
    const again = await loadCLIPModel(dir);
    expect(await logitsError(again, 'clip-tiny')).toBeLessThan(100 * 1e-5);
    expect(again.logitScale.dataSync()[0]).toBe(model.logitScale.dataSync()[0]);

    const io = await readIO('clip-tiny');
    const batch = {
      pixelValues: toTensor(io.get('pixel_values')) as tf.Tensor4D,
      inputIds: toTensor(io.get('input_ids')) as tf.Tensor2D,
      attentionMask: toTensor(io.get('attention_mask')) as tf.Tensor2D,
    };
    const before = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      const { value, grads } = tf.variableGrads(() => again.loss(batch, { training: true }), again.trainableVariables());
      tf.dispose([value, ...Object.values(grads)]);
      expect(tf.memory().numTensors).toBe(before);
    }
    tf.dispose(batch);
    model.dispose();
    again.dispose();
  });
});
