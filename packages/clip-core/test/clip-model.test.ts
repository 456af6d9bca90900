import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIPModel,
  CheckpointError,
  ConfigError,
  ProjectionHead,
  clipLoss,
  createImageEncoder,
  createTextEncoder,
  initBackend,
  serializeSafetensors,
  type WritableTensor,
} from '../src/index.js';
import { readSafetensors, saveCLIPModel, loadCLIPModel } from '../src/node.js';
import { IMAGE_CONFIG, MeanPoolImageTower, TEXT_CONFIG, fakeBatch, registerFakeTowers } from './helpers/fake-towers.js';

let root: string;
let n = 0;
const freshDir = (): string => join(root, `ckpt-${n++}`);

beforeAll(async () => {
  await initBackend('cpu');
  registerFakeTowers();
  root = await mkdtemp(join(tmpdir(), 'clip-model-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function makeModel(opts: { head?: 'linear' | 'mlp'; seed?: number } = {}): CLIPModel {
  return new CLIPModel({
    imageEncoder: createImageEncoder(IMAGE_CONFIG, { seed: 11 }),
    textEncoder: createTextEncoder(TEXT_CONFIG, { seed: 12 }),
    projectionDim: 8,
    head: opts.head ?? 'linear',
    seed: opts.seed ?? 5,
  });
}

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

describe('CLIPModel', () => {
  it('encodes to L2-normalised embeddings and names its variables like HF', () => {
    const model = makeModel();
    const batch = fakeBatch(4);
    const img = model.encodeImages(batch.pixelValues);
    const txt = model.encodeTexts(batch);
    expect(img.shape).toEqual([4, 8]);
    expect(txt.shape).toEqual([4, 8]);
    for (const e of [img, txt]) {
      const norms = tf.tidy(() => tf.norm(e, 'euclidean', 1));
      for (const v of values(norms)) expect(v).toBeCloseTo(1, 5);
      norms.dispose();
    }
    const names = model.namedVariables().map((v) => v.name);
    expect(names).toEqual([
      'vision_model.proj.weight',
      'vision_model.proj.bias',
      'text_model.embeddings.weight',
      'text_model.proj.weight',
      'visual_projection.linear.weight',
      'visual_projection.linear.bias',
      'visual_projection.layer_norm.weight',
      'visual_projection.layer_norm.bias',
      'text_projection.linear.weight',
      'text_projection.linear.bias',
      'text_projection.layer_norm.weight',
      'text_projection.layer_norm.bias',
      'logit_scale',
    ]);
    expect(model.logitScale.dataSync()[0]).toBeCloseTo(Math.log(1 / 0.07), 6);
    expect(model.trainableVariables()).toHaveLength(13);
    model.imageEncoder.freeze();
    expect(model.trainableVariables()).toHaveLength(11);
    tf.dispose([img, txt, batch.pixelValues, batch.inputIds, batch.attentionMask]);
    model.dispose();
  });

  it('loss = clipLoss(projected towers); lossFromFeatures agrees; logits are scaled cosines', () => {
    const model = makeModel();
    const batch = fakeBatch(5);
    const loss = model.loss(batch);
    const imgF = model.imageEncoder.encode(batch.pixelValues);
    const txtF = model.textEncoder.encode(batch);
    const fromFeatures = model.lossFromFeatures(imgF, txtF);
    const manual = tf.tidy(() =>
      clipLoss(model.visualProjection.apply(imgF), model.textProjection.apply(txtF), model.logitScale),
    );
    expect(values(loss)[0]).toBeCloseTo(values(manual)[0] as number, 6);
    expect(values(fromFeatures)[0]).toBeCloseTo(values(manual)[0] as number, 6);

    const { logitsPerImage, logitsPerText } = model.logits(batch.pixelValues, batch);
    const cos = tf.tidy(() =>
      tf.mul(tf.matMul(model.encodeImages(batch.pixelValues), model.encodeTexts(batch), false, true), 1 / 0.07),
    );
    values(logitsPerImage).forEach((v, i) => expect(v).toBeCloseTo(values(cos)[i] as number, 4));
    expect(logitsPerText.shape).toEqual([5, 5]);
    const pf = model.projectImageFeatures(imgF);
    const pi = model.encodeImages(batch.pixelValues);
    values(pf).forEach((v, i) => expect(v).toBeCloseTo(values(pi)[i] as number, 6));
    tf.dispose([loss, imgF, txtF, fromFeatures, manual, logitsPerImage, logitsPerText, cos, pf, pi]);
    tf.dispose(Object.values(batch));
    model.dispose();
  });

  it('towers that do not fit their heads, or heads that disagree, are ConfigErrors', () => {
    const imageEncoder = new MeanPoolImageTower(IMAGE_CONFIG);
    const textEncoder = createTextEncoder(TEXT_CONFIG);
    const before = tf.memory().numTensors;
    const wrongIn = new ProjectionHead({ inputDim: 7, projectionDim: 8 });
    expect(() => new CLIPModel({ imageEncoder, textEncoder, projectionDim: 8, visualProjection: wrongIn })).toThrow(
      /visual_projection takes 7 features but the image tower outputs 12/,
    );
    const textHead = new ProjectionHead({ inputDim: 10, projectionDim: 16 });
    expect(() => new CLIPModel({ imageEncoder, textEncoder, projectionDim: 8, textProjection: textHead })).toThrow(ConfigError);
    expect(() => new CLIPModel({ imageEncoder, textEncoder, projectionDim: 8, textProjection: textHead })).toThrow(
      /projection dims disagree: visual_projection → 8, text_projection → 16/,
    );
    wrongIn.dispose();
    textHead.dispose();
    // Heads built internally for a failed construction were released.
    expect(tf.memory().numTensors).toBe(before);
    imageEncoder.dispose();
    textEncoder.dispose();
  });

  it('trains without leaking tensors, and dispose releases every weight', () => {
    const start = tf.memory().numTensors;
    const model = makeModel({ head: 'mlp' });
    const batch = fakeBatch(6);
    const opt = tf.train.adam(1e-2);
    const step = (): number => {
      const cost = opt.minimize(() => model.loss(batch, { training: true }), true, model.trainableVariables());
      const v = values(cost as tf.Scalar)[0] as number;
      cost?.dispose();
      return v;
    };
    const first = step(); // creates Adam's slots
    const mid = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 8; i++) last = step();
    expect(tf.memory().numTensors).toBe(mid);
    expect(last).toBeLessThan(first);
    // Every trainable weight receives a gradient.
    const { grads, value } = tf.variableGrads(() => model.loss(batch, { training: true }), model.trainableVariables());
    expect(Object.keys(grads)).toHaveLength(model.trainableVariables().length);
    tf.dispose([value, ...Object.values(grads)]);
    opt.dispose();
    tf.dispose(Object.values(batch));
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});

describe('CLIPModel checkpoints', () => {
  it('save → load round trip gives identical embeddings; config follows the dual-encoder layout', async () => {
    const dir = freshDir();
    const model = makeModel({ head: 'mlp' });
    // Move weights away from their init so a load that silently skipped a key would show.
    tf.tidy(() => model.namedVariables().forEach((v) => v.variable.assign(tf.add(v.variable, 0.01))));
    await saveCLIPModel(model, dir);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toEqual({
      model_type: 'clip-ts',
      projection_dim: 8,
      projection_head: 'mlp',
      head_dropout: 0.1,
      logit_scale_init_value: Math.log(1 / 0.07),
      vision_config: IMAGE_CONFIG,
      text_config: TEXT_CONFIG,
    });
    const file = await readSafetensors(join(dir, 'model.safetensors'));
    expect(file.metadata.format).toBe('pt');
    expect(file.tensors.get('logit_scale')?.shape).toEqual([]);
    expect(file.tensors.get('vision_model.proj.weight')?.shape).toEqual([12, 3]); // PyTorch [out, in]
    expect(file.tensors.get('text_projection.fc.weight')?.shape).toEqual([8, 8]);

    const loaded = await loadCLIPModel(dir, { seed: 99 });
    const batch = fakeBatch(3);
    const pairs: Array<[tf.Tensor, tf.Tensor]> = [
      [model.encodeImages(batch.pixelValues), loaded.encodeImages(batch.pixelValues)],
      [model.encodeTexts(batch), loaded.encodeTexts(batch)],
      [model.logitScale, loaded.logitScale],
    ];
    for (const [a, b] of pairs) expect(values(b)).toEqual(values(a));
    expect(loaded.getConfig()).toEqual(model.getConfig());
    tf.dispose(pairs.slice(0, 2).flat());
    tf.dispose(Object.values(batch));
    model.dispose();
    loaded.dispose();
  });

  it('a failed save leaves the previous checkpoint byte-identical (error before and during writing)', async () => {
    const dir = freshDir();
    const model = makeModel();
    await saveCLIPModel(model, dir);
    const before = {
      config: await readFile(join(dir, 'config.json')),
      weights: await readFile(join(dir, 'model.safetensors')),
    };
    tf.tidy(() => model.logitScale.assign(tf.scalar(1)));

    // 1. A tower fails while the state dict is being gathered.
    (model.imageEncoder as MeanPoolImageTower).failStateDict = true;
    await expect(saveCLIPModel(model, dir)).rejects.toThrow(/injected stateDict failure/);
    (model.imageEncoder as MeanPoolImageTower).failStateDict = false;

    // 2. A tensor that cannot be serialised (NaN shape) fails serialisation.
    const orig = model.textProjection.stateDict.bind(model.textProjection);
    model.textProjection.stateDict = () => {
      const m = orig();
      const bad = m.get('linear.bias') as tf.Tensor;
      Object.defineProperty(bad, 'shape', { value: [NaN] });
      return m;
    };
    await expect(saveCLIPModel(model, dir)).rejects.toThrow(/'text_projection\.linear\.bias'.*shape/);
    model.textProjection.stateDict = orig;

    // 3. The directory cannot be created (filesystem faults mid-write: see atomic.test.ts).
    const blocked = join(root, 'blocked');
    await writeFile(blocked, 'not a dir');
    await expect(saveCLIPModel(model, join(blocked, 'sub'))).rejects.toThrow(CheckpointError);

    expect(await readFile(join(dir, 'config.json'))).toEqual(before.config);
    expect(await readFile(join(dir, 'model.safetensors'))).toEqual(before.weights);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
    model.dispose();
  });

  describe('loading bad checkpoints', () => {
    let good: string;
    beforeAll(async () => {
      good = freshDir();
      const model = makeModel();
      await saveCLIPModel(model, good);
      model.dispose();
    });

    async function variant(edit: (dir: string) => Promise<void>): Promise<string> {
      const dir = freshDir();
      await rm(dir, { recursive: true, force: true });
      const { cp } = await import('node:fs/promises');
      await cp(good, dir, { recursive: true });
      await edit(dir);
      return dir;
    }
    const writeConfig = async (dir: string, patch: (c: Record<string, unknown>) => void): Promise<void> => {
      const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      patch(c);
      await writeFile(join(dir, 'config.json'), JSON.stringify(c));
    };
    const rewriteWeights = async (dir: string, edit: (m: Map<string, WritableTensor>) => void): Promise<void> => {
      const { tensors } = await readSafetensors(join(dir, 'model.safetensors'));
      const m = new Map<string, WritableTensor>(
        [...tensors].map(([k, t]) => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }]),
      );
      edit(m);
      await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(m));
    };

    it('missing files → CheckpointError naming the file', async () => {
      const noWeights = await variant((d) => rm(join(d, 'model.safetensors')));
      await expect(loadCLIPModel(noWeights)).rejects.toThrow(CheckpointError);
      await expect(loadCLIPModel(noWeights)).rejects.toThrow(/model\.safetensors is missing/);
      const noConfig = await variant((d) => rm(join(d, 'config.json')));
      await expect(loadCLIPModel(noConfig)).rejects.toThrow(/config\.json is missing/);
      await expect(loadCLIPModel(join(root, 'does-not-exist'))).rejects.toThrow(CheckpointError);
    });

    it('invalid config → ConfigError naming the file and the key', async () => {
      const cases: Array<[(c: Record<string, unknown>) => void, RegExp]> = [
        [(c) => (c.projection_dim = -3), /config\.json: invalid CLIP config:\nprojection_dim: /],
        [(c) => (c.projection_head = 'conv'), /projection_head: /],
        [(c) => delete c.vision_config, /vision_config: /],
        [(c) => (c.model_type = 'clip'), /model_type: /],
        [(c) => (c.text_config = { model_type: 'nope' }), /config\.json: text_config: .*unknown model_type 'nope'/],
        [(c) => (c.vision_config = { model_type: 'test-meanpool', num_channels: 3 }), /config\.json: vision_config: .*hidden_size/],
      ];
      for (const [patch, msg] of cases) {
        const dir = await variant((d) => writeConfig(d, patch));
        const err = await loadCLIPModel(dir).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).toMatch(msg);
      }
      const garbled = await variant((d) => writeFile(join(d, 'config.json'), '{"model_type": '));
      await expect(loadCLIPModel(garbled)).rejects.toThrow(/config\.json: cannot parse/);
    });

    it('missing or mis-shaped weights → CheckpointError naming the file and key, without leaking', async () => {
      const before = tf.memory().numTensors;
      const missing = await variant((d) => rewriteWeights(d, (m) => m.delete('text_projection.layer_norm.bias')));
      await expect(loadCLIPModel(missing)).rejects.toThrow(
        /model\.safetensors \(text_projection\.\*\): missing weights: layer_norm\.bias/,
      );
      const noScale = await variant((d) => rewriteWeights(d, (m) => m.delete('logit_scale')));
      await expect(loadCLIPModel(noScale)).rejects.toThrow(/model\.safetensors: missing weights: logit_scale/);
      const shaped = await variant((d) =>
        rewriteWeights(d, (m) => m.set('vision_model.proj.weight', { dtype: 'F32', shape: [3, 12], data: new Float32Array(36) })),
      );
      await expect(loadCLIPModel(shaped)).rejects.toThrow(
        /model\.safetensors \(vision_model\.\*\): 'proj\.weight' has shape \[3, 12\], expected \[12, 3\]/,
      );
      const corrupt = await variant((d) => writeFile(join(d, 'model.safetensors'), new Uint8Array([1, 2, 3])));
      await expect(loadCLIPModel(corrupt)).rejects.toThrow(/model\.safetensors: file is 3 bytes/);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
