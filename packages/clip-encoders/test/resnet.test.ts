import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ConfigError, createImageEncoder, initBackend, ShapeError, type TensorData } from '@clip-ts/core';
import { ResNetModel, parseResNetConfig } from '@clip-ts/encoders';
import { loadEncoderFromDir } from '@clip-ts/encoders/node';
import { BACKENDS, fixtureDir, maxAbsDiff, readIO, toTensor } from './helpers.js';

// float32 against the float64 reference of test/gen/make_resnet.py; a wrong pad, stride, transpose or
// BatchNorm eps is off by 1e-2 or more.
const TOL = 1e-4;

const FIXTURES = [
  'resnet-tiny-bottleneck', // ResNetModel keys, bottleneck, no downsampling in stage 0, 29×29 input
  'resnet-tiny-basic', // 'resnet.' prefix + classifier.*, basic layers, downsample_in_first_stage, 23×23
  'resnet-tiny-gelu', // gelu after the adds only, downsample_in_bottleneck, 20×24
];

async function load(name: string): Promise<ResNetModel> {
  const loaded = await loadEncoderFromDir(fixtureDir(name));
  expect(loaded.kind).toBe('image');
  expect(loaded.encoder).toBeInstanceOf(ResNetModel);
  return loaded.encoder as ResNetModel;
}

/** name → values of every BatchNorm buffer (copies). */
function buffers(m: ResNetModel): Map<string, number[]> {
  return new Map(m.namedVariables().filter((v) => v.buffer).map((v) => [v.name, Array.from(v.variable.dataSync())]));
}

describe.each(BACKENDS)('ResNet on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });
  afterAll(() => {
    tf.disposeVariables();
  });

  it.each(FIXTURES)('%s: eval last_hidden_state and pooler_output within 1e-4 of HF', async (name) => {
    const io = await readIO(name);
    const m = await load(name);
    const before = tf.memory().numTensors;
    const px = toTensor(io.get('pixel_values')) as tf.Tensor4D;
    const out = m.forward(px);
    expect(maxAbsDiff(out.lastHiddenState, io.get('last_hidden_state')!)).toBeLessThan(TOL);
    expect(maxAbsDiff(out.poolerOutput, io.get('pooler_output')!)).toBeLessThan(TOL);
    const feats = m.encode(px);
    expect(maxAbsDiff(feats, out.poolerOutput)).toBe(0);
    tf.dispose([px, out.lastHiddenState, out.poolerOutput, feats]);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it.each(FIXTURES)('%s: train-mode BatchNorm matches torch (outputs, running stats, num_batches_tracked)', async (name) => {
    const io = await readIO(name);
    const m = await load(name);
    const px = toTensor(io.get('pixel_values')) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const out = m.forward(px, { training: true });
    expect(maxAbsDiff(out.lastHiddenState, io.get('train_last_hidden_state')!)).toBeLessThan(TOL);
    expect(maxAbsDiff(out.poolerOutput, io.get('train_pooler_output')!)).toBeLessThan(TOL);
    tf.dispose([out.lastHiddenState, out.poolerOutput]);
    expect(tf.memory().numTensors).toBe(before);
    const after = buffers(m);
    let checked = 0;
    for (const [key, expected] of io) {
      if (!key.startsWith('train_state.')) continue;
      const got = after.get(key.slice('train_state.'.length).replace(/^resnet\./, ''));
      expect(got, key).toBeDefined();
      if (expected.dtype === 'int32') expect(got, key).toEqual(Array.from(expected.data));
      else for (let i = 0; i < got!.length; i++) expect(Math.abs(got![i]! - expected.data[i]!), key).toBeLessThan(1e-5);
      checked++;
    }
    expect(checked).toBe(after.size);
    tf.dispose(px);
    m.dispose();
  });

  it('freezeBnStats: a training forward uses and keeps the running statistics', async () => {
    const io = await readIO('resnet-tiny-bottleneck');
    const m = await load('resnet-tiny-bottleneck');
    const px = toTensor(io.get('pixel_values')) as tf.Tensor4D;
    const start = buffers(m);
    m.freezeBnStats();
    expect(m.bnStatsAreFrozen).toBe(true);
    const out = m.forward(px, { training: true });
    // Running statistics normalise, as in eval: the eval reference, not the train one.
    expect(maxAbsDiff(out.lastHiddenState, io.get('last_hidden_state')!)).toBeLessThan(TOL);
    expect(buffers(m)).toEqual(start);
    m.freezeBnStats(false);
    const trained = m.forward(px, { training: true });
    expect(buffers(m)).not.toEqual(start);
    tf.dispose([px, out.lastHiddenState, out.poolerOutput, trained.lastHiddenState, trained.poolerOutput]);
    m.dispose();
  });
});

describe('ResNet weights and config', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });
  afterAll(() => {
    tf.disposeVariables();
  });

  it('buffers are never trainable, not even after unfreeze(), and stateDict round-trips them in HF layout', async () => {
    const m = await load('resnet-tiny-basic');
    const named = m.namedVariables();
    const bufs = named.filter((v) => v.buffer);
    expect(bufs.map((v) => v.name)).toContain('encoder.stages.0.layers.0.shortcut.normalization.num_batches_tracked');
    expect(bufs.length).toBe(named.filter((v) => /running_(mean|var)|num_batches_tracked$/.test(v.name)).length);
    m.freeze();
    expect(m.frozen).toBe(true);
    m.unfreeze();
    const trainable = new Set(m.trainableVariables());
    for (const b of bufs) {
      expect(b.variable.trainable).toBe(false);
      expect(trainable.has(b.variable)).toBe(false);
    }
    expect(trainable.size).toBe(named.length - bufs.length);

    const state = m.stateDict();
    const stem = state.get('embedder.embedder.convolution.weight')!;
    expect(stem.shape).toEqual([6, 3, 7, 7]);
    expect(state.get('embedder.embedder.normalization.num_batches_tracked')!.dtype).toBe('int32');
    const asData = new Map<string, TensorData>();
    for (const [k, t] of state) {
      asData.set(k, { storedDtype: t.dtype === 'int32' ? 'I64' : 'F32', dtype: t.dtype as 'float32' | 'int32', shape: t.shape, data: t.dataSync() as Float32Array | Int32Array });
    }
    const copy = new ResNetModel(m.getConfig(), { seed: 5 });
    copy.loadStateDict(asData, 'state');
    const px = tf.randomNormal([2, 3, 23, 23], 0, 1, 'float32', 3) as tf.Tensor4D;
    const a = m.encode(px);
    const b = copy.encode(px);
    expect(maxAbsDiff(a, b)).toBe(0);
    tf.dispose([a, b, px, ...state.values()]);
    m.dispose();
    copy.dispose();
  });

  it('loading rejects a float num_batches_tracked and missing running stats, naming the key', () => {
    const m = new ResNetModel({ model_type: 'resnet', embedding_size: 4, hidden_sizes: [4], depths: [1], layer_type: 'basic' });
    const state = m.stateDict();
    const data = new Map<string, TensorData>();
    for (const [k, t] of state) data.set(k, { storedDtype: 'F32', dtype: 'float32', shape: t.shape, data: new Float32Array(t.dataSync()) });
    expect(() => m.loadStateDict(data, 'w.safetensors')).toThrow(/num_batches_tracked: expected an integer tensor/);
    data.delete('embedder.embedder.normalization.running_var');
    expect(() => m.loadStateDict(data, 'w.safetensors')).toThrow(CheckpointError);
    tf.dispose([...state.values()]);
    m.dispose();
  });

  it('config: HF defaults (resnet-50), the registry builds it, bad configs are ConfigErrors naming the key', () => {
    const c = parseResNetConfig({ model_type: 'resnet' });
    expect(c).toMatchObject({ num_channels: 3, embedding_size: 64, hidden_sizes: [256, 512, 1024, 2048], depths: [3, 4, 6, 3], layer_type: 'bottleneck', hidden_act: 'relu', downsample_in_first_stage: false, downsample_in_bottleneck: false });
    expect(() => parseResNetConfig({ model_type: 'resnet', depths: [1, 1] }, 'cfg.json')).toThrow(/cfg\.json[\s\S]*depths/);
    expect(() => parseResNetConfig({ model_type: 'resnet', hidden_sizes: [2], depths: [1] })).toThrow(ConfigError);
    expect(() => parseResNetConfig({ model_type: 'resnet', layer_type: 'wide' })).toThrow(/layer_type/);
    const enc = createImageEncoder({ model_type: 'resnet', embedding_size: 4, hidden_sizes: [8, 12], depths: [1, 1], layer_type: 'basic' }, { seed: 1 });
    expect(enc).toBeInstanceOf(ResNetModel);
    expect(enc.hiddenSize).toBe(12);
    expect(() => enc.encode(tf.zeros([1, 1, 8, 8]) as tf.Tensor4D)).toThrow(ShapeError);
    enc.dispose();
  });

  it('init: seeded kaiming normal (fan_out) convs, BatchNorm 1/0 and running stats 0/1', () => {
    const cfg = { model_type: 'resnet', embedding_size: 16, hidden_sizes: [32], depths: [1] };
    const a = new ResNetModel(cfg, { seed: 3 });
    const b = new ResNetModel(cfg, { seed: 3 });
    const sa = a.stateDict();
    const sb = b.stateDict();
    const w = sa.get('encoder.stages.0.layers.0.layer.1.convolution.weight')!; // [8, 8, 3, 3]: fan_out 72
    const v = Array.from(w.dataSync());
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    expect(std).toBeGreaterThan(Math.sqrt(2 / 72) * 0.85);
    expect(std).toBeLessThan(Math.sqrt(2 / 72) * 1.15);
    expect(maxAbsDiff(w, sb.get('encoder.stages.0.layers.0.layer.1.convolution.weight')!)).toBe(0);
    expect(Array.from(sa.get('embedder.embedder.normalization.weight')!.dataSync())).toEqual(new Array(16).fill(1));
    expect(Array.from(sa.get('embedder.embedder.normalization.running_var')!.dataSync())).toEqual(new Array(16).fill(1));
    expect(Array.from(sa.get('embedder.embedder.normalization.running_mean')!.dataSync())).toEqual(new Array(16).fill(0));
    tf.dispose([...sa.values(), ...sb.values()]);
    a.dispose();
    b.dispose();
  });

  it('a config whose sizes disagree with the weights is a ConfigError naming the key', async () => {
    const { prepareEncoder } = await import('@clip-ts/encoders');
    const { readSafetensors } = await import('@clip-ts/core/node');
    const { tensors } = await readSafetensors(`${fixtureDir('resnet-tiny-bottleneck')}/model.safetensors`);
    const raw = { model_type: 'resnet', embedding_size: 8, hidden_sizes: [16, 32], depths: [1, 1], layer_type: 'bottleneck' };
    expect(() => prepareEncoder(raw, 'config.json').load(tensors, 'model.safetensors')).toThrow(/config\.json[\s\S]*depths/);
  });
});
