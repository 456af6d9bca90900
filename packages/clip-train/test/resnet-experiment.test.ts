import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { CLIPModel, ConfigError } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import '@clip-ts/encoders';
import { loadModelDir, runExperiment } from '../src/experiment/index.js';
import { tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

const tmpDir = useTmpDirs('clip-resnet-');
const quiet = { io: { stdout: () => {}, stderr: () => {} } };

/** A ResNet small enough for tests: basic layers, 2 stages, 16 px images. */
const RESNET = { model_type: 'resnet', embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1], layer_type: 'basic' };
/** 4 epochs of tinyConfig's 24 training images in batches of 8: 12 training steps. */
const EPOCHS = 4;
const STEPS = 12;

function resnetConfig(runDir: string, vision: Record<string, unknown> = {}, backend: 'cpu' | 'wasm' = 'cpu') {
  const base = tinyConfig(runDir);
  return { ...base, backend, schedule: { epochs: EPOCHS }, model: { ...base.model, vision: { config: RESNET, ...vision } } };
}

/** name → values of the vision tower's BatchNorm buffers in a checkpoint dir's model.safetensors. */
async function bnBuffers(dir: string): Promise<Map<string, { dtype: string; values: number[] }>> {
  const { tensors } = await readSafetensors(path.join(dir, 'model.safetensors'));
  const out = new Map<string, { dtype: string; values: number[] }>();
  for (const [k, t] of tensors) if (/normalization\.(running_(mean|var)|num_batches_tracked)$/.test(k)) out.set(k, { dtype: t.storedDtype, values: Array.from(t.data) });
  return out;
}

describe('runExperiment with a ResNet vision tower from scratch', () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    it(`${backend}: loss goes down, BatchNorm statistics train and are saved, the checkpoint reloads with the same outputs`, async () => {
      const runDir = await tmpDir();
      const before = tf.memory().numTensors;
      const r = await runExperiment(resnetConfig(runDir, {}, backend), quiet);
      expect(tf.memory().numTensors).toBe(before);
      expect(r.history).toHaveLength(EPOCHS);
      expect(r.history[EPOCHS - 1]!.loss).toBeLessThan(r.history[0]!.loss!);

      const last = path.join(runDir, 'last');
      const bufs = await bnBuffers(last);
      // 2 stages of 1 basic layer (2 convs) + a shortcut in stage 1, plus the stem: 6 BatchNorms × 3 buffers.
      expect(bufs.size).toBe(18);
      for (const [k, b] of bufs) {
        if (k.endsWith('num_batches_tracked')) {
          expect(b.dtype, k).toBe('I64');
          expect(b.values, k).toEqual([STEPS]); // one update per training step, none in evaluation
        } else {
          const init = k.endsWith('running_var') ? 1 : 0;
          expect(b.values.some((v) => Math.abs(v - init) > 1e-3), `${k} moved from its init`).toBe(true);
        }
      }

      // Reload last/, run it, save it to bytes and load those: identical image embeddings (eval mode
      // uses the running statistics, so they must have travelled with the weights).
      const model = await loadModelDir(last);
      const px = tf.randomUniform([3, 3, 16, 16], 0, 1, 'float32', 4) as tf.Tensor4D;
      const a = tf.tidy(() => model.projectImageFeatures(model.imageEncoder.encode(px)));
      const again = CLIPModel.fromBytes(await model.toBytes());
      const b = tf.tidy(() => again.projectImageFeatures(again.imageEncoder.encode(px)));
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      // …and the statistics matter: with fresh ones (0 / 1) the embeddings differ.
      const bn = again.imageEncoder.namedVariables().filter((v) => v.buffer && /running_(mean|var)$/.test(v.name));
      for (const v of bn) v.variable.assign(v.name.endsWith('running_var') ? tf.onesLike(v.variable) : tf.zerosLike(v.variable));
      const c = tf.tidy(() => again.projectImageFeatures(again.imageEncoder.encode(px)));
      expect(Array.from(c.dataSync())).not.toEqual(Array.from(a.dataSync()));
      tf.dispose([px, a, b, c]);
      model.dispose();
      again.dispose();
    });
  }

  it('freezeBnStats: the weights train, the running statistics and counters stay at their init', async () => {
    const runDir = await tmpDir();
    const r = await runExperiment(resnetConfig(runDir, { freezeBnStats: true }), quiet);
    expect(r.history[EPOCHS - 1]!.loss).toBeLessThan(r.history[0]!.loss!);
    const bufs = await bnBuffers(path.join(runDir, 'last'));
    expect(bufs.size).toBe(18);
    for (const [k, b] of bufs) {
      const init = k.endsWith('running_var') ? 1 : 0;
      expect(b.values.every((v) => v === init), k).toBe(true);
    }
  });

  it('pretrained: an HF ResNetForImageClassification dir loads (resnet. prefix) and, with frozen stats, keeps its statistics', async () => {
    const hf = fileURLToPath(new URL('../../clip-encoders/test/fixtures/hf/resnet-tiny-basic', import.meta.url));
    const runDir = await tmpDir();
    const base = tinyConfig(runDir);
    await runExperiment({ ...base, schedule: { epochs: 1 }, model: { ...base.model, vision: { pretrained: hf, freezeBnStats: true } } }, quiet);
    const saved = await bnBuffers(path.join(runDir, 'last'));
    const { tensors } = await readSafetensors(path.join(hf, 'model.safetensors'));
    expect(saved.size).toBe([...tensors.keys()].filter((k) => /normalization\.(running_|num_batches)/.test(k)).length);
    for (const [k, b] of saved) {
      const src = tensors.get(k.replace(/^vision_model\./, 'resnet.'));
      expect(src, k).toBeDefined();
      expect(b.values, k).toEqual(Array.from(src!.data));
    }
  });

  it('freezeBnStats on a tower without BatchNorm is a ConfigError naming the key', async () => {
    const runDir = await tmpDir();
    const base = tinyConfig(runDir);
    const config = { ...base, model: { ...base.model, vision: { ...base.model!.vision!, freezeBnStats: true } } };
    await expect(runExperiment(config, quiet)).rejects.toThrow(ConfigError);
    await expect(runExperiment(config, quiet)).rejects.toThrow(/model\.vision\.freezeBnStats: this tower \(vit\)/);
  });
});
