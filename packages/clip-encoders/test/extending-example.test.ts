// #region example (this region is the ```ts block of docs/extending.md; a test below checks they are identical)
import * as tf from '@tensorflow/tfjs-core';
import {
  CheckpointError,
  CLIPModel,
  createImageEncoder,
  createTextEncoder,
  registerImageEncoder,
  ShapeError,
  type EncoderConfig,
  type EncoderFactoryOptions,
  type ImageEncoder,
  type ImageInput,
  type NamedVariable,
  type TensorData,
} from '@clip-ts/core';
import { loadCLIPModel, saveCLIPModel } from '@clip-ts/core/node';
import { loadTokenizer } from '@clip-ts/encoders/node';

/** The tower's config.json entry; `model_type` selects the factory registered below. */
export interface TinyCnnConfig extends EncoderConfig {
  model_type: 'tiny-cnn';
  /** Square input side; divisible by patch * pool. */
  image_size: number;
  /** conv1: patch × patch kernel, stride patch. */
  patch: number;
  channels: number;
  /** conv2: pool × pool kernel, stride pool; its channels are the features. */
  pool: number;
  hidden_size: number;
}

/**
 * A convolution whose stride equals its kernel is a matmul over non-overlapping patches. We write it that
 * way instead of tf.conv2d because the wasm backend has no Conv2DBackpropFilter kernel: reshape,
 * transpose and matMul have gradients on every backend. NHWC [B, H, W, C] → [B·H/k·W/k, C·k·k], each
 * patch flattened in (c, ky, kx) order — PyTorch's Conv2d weight order.
 */
function patchify(x: tf.Tensor4D, k: number): tf.Tensor2D {
  const [b, h, w, c] = x.shape;
  const grid = tf.reshape(x, [b, h / k, k, w / k, k, c]);
  return tf.reshape(tf.transpose(grid, [0, 1, 3, 5, 2, 4]), [b * (h / k) * (w / k), c * k * k]);
}

export class TinyCnn implements ImageEncoder {
  readonly hiddenSize: number;
  private readonly config: TinyCnnConfig;
  private readonly vars: NamedVariable[];

  constructor(config: TinyCnnConfig, options: EncoderFactoryOptions = {}) {
    const { image_size: size, patch, pool, channels, hidden_size: hidden } = config;
    if (size % (patch * pool) !== 0) throw new ShapeError(`tiny-cnn: image_size ${size} is not divisible by patch*pool`);
    this.config = { ...config };
    this.hiddenSize = hidden;
    const seed = options.seed ?? 0;
    // Kernels live in matmul layout [in·k·k, out] (He-normal); stateDict() converts to PyTorch's [out, in, k, k].
    // tf.tidy frees the initial values (a variable keeps its own reference to the data).
    const kernel = (name: string, fanIn: number, out: number, s: number): NamedVariable => ({
      name,
      variable: tf.tidy(() => tf.variable(tf.randomNormal([fanIn, out], 0, Math.sqrt(2 / fanIn), 'float32', s))),
      noDecay: false,
    });
    const bias = (name: string, n: number): NamedVariable => ({ name, variable: tf.tidy(() => tf.variable(tf.zeros([n]))), noDecay: true });
    this.vars = [
      kernel('conv1.weight', 3 * patch * patch, channels, seed),
      bias('conv1.bias', channels),
      kernel('conv2.weight', channels * pool * pool, hidden, seed + 1),
      bias('conv2.bias', hidden),
    ];
  }

  private get(name: string): tf.Variable {
    const v = this.vars.find((e) => e.name === name);
    if (!v) throw new Error(`tiny-cnn: no variable ${name}`);
    return v.variable;
  }

  /** pixels: float32 [B, 3, S, S] (NCHW) → [B, hidden] features; the caller owns the result. */
  encode(pixels: ImageInput): tf.Tensor2D {
    const { image_size: size, patch, pool, channels, hidden_size: hidden } = this.config;
    const [b, c, h, w] = pixels.shape;
    if (c !== 3 || h !== size || w !== size) throw new ShapeError(`tiny-cnn: expected [B, 3, ${size}, ${size}], got [${pixels.shape.join(', ')}]`);
    return tf.tidy(() => {
      const nhwc = tf.transpose(pixels, [0, 2, 3, 1]) as tf.Tensor4D;
      const g = size / patch;
      const h1 = tf.relu(tf.add(tf.matMul(patchify(nhwc, patch), this.get('conv1.weight')), this.get('conv1.bias')));
      const f1 = tf.reshape(h1, [b, g, g, channels]) as tf.Tensor4D;
      const h2 = tf.relu(tf.add(tf.matMul(patchify(f1, pool), this.get('conv2.weight')), this.get('conv2.bias')));
      return tf.mean(tf.reshape(h2, [b, (g / pool) ** 2, hidden]), 1) as tf.Tensor2D; // global average pool
    });
  }

  namedVariables(): NamedVariable[] {
    return [...this.vars];
  }
  trainableVariables(): tf.Variable[] {
    return this.vars.filter((e) => e.variable.trainable).map((e) => e.variable);
  }
  freeze(): void {
    for (const e of this.vars) e.variable.trainable = false;
  }
  unfreeze(): void {
    for (const e of this.vars) e.variable.trainable = true;
  }
  get frozen(): boolean {
    return this.vars.every((e) => !e.variable.trainable);
  }

  /** PyTorch layout: conv weights [out, in, k, k]. The caller owns the returned tensors. */
  stateDict(): Map<string, tf.Tensor> {
    const { patch, pool, channels, hidden_size: hidden } = this.config;
    const out = new Map<string, tf.Tensor>();
    out.set('conv1.weight', tf.tidy(() => tf.reshape(tf.transpose(this.get('conv1.weight')), [channels, 3, patch, patch])));
    out.set('conv1.bias', tf.clone(this.get('conv1.bias')));
    out.set('conv2.weight', tf.tidy(() => tf.reshape(tf.transpose(this.get('conv2.weight')), [hidden, channels, pool, pool])));
    out.set('conv2.bias', tf.clone(this.get('conv2.bias')));
    return out;
  }

  loadStateDict(weights: ReadonlyMap<string, TensorData>, source: string): void {
    const missing = this.vars.map((e) => e.name).filter((n) => !weights.has(n));
    if (missing.length > 0) throw new CheckpointError(`${source}: tiny-cnn weights missing: ${missing.join(', ')}`);
    const expected = this.stateDict();
    try {
      for (const e of this.vars) {
        const t = weights.get(e.name) as TensorData;
        const want = (expected.get(e.name) as tf.Tensor).shape;
        if (t.shape.join() !== want.join()) {
          throw new CheckpointError(`${source}: ${e.name} has shape [${t.shape.join(', ')}], expected [${want.join(', ')}]`);
        }
        // [out, in, k, k] → [out, in·k·k] → [in·k·k, out]; a bias is assigned as is.
        const value = tf.tidy(() => {
          const pt = tf.tensor(t.data, t.shape, 'float32');
          return t.shape.length === 4 ? tf.transpose(tf.reshape(pt, [t.shape[0] as number, -1])) : pt;
        });
        e.variable.assign(value);
        value.dispose(); // assign keeps its own reference
      }
    } finally {
      tf.dispose([...expected.values()]);
    }
  }

  getConfig(): TinyCnnConfig {
    return { ...this.config };
  }
  dispose(): void {
    for (const e of this.vars) e.variable.dispose();
  }
}

// After this, CLIPModel.load and the CLI can rebuild any checkpoint whose vision_config says 'tiny-cnn'.
registerImageEncoder('tiny-cnn', (config, options) => new TinyCnn(config as TinyCnnConfig, options));

/** Pair the CNN with a small DistilBERT in a CLIPModel, train one step, save, load back. */
export async function trainSaveLoad(tokenizerDir: string, checkpointDir: string) {
  const tokenizer = await loadTokenizer(tokenizerDir);
  const cnn: TinyCnnConfig = { model_type: 'tiny-cnn', image_size: 32, patch: 4, channels: 16, pool: 2, hidden_size: 32 };
  const model = new CLIPModel({
    imageEncoder: createImageEncoder(cnn, { seed: 1 }),
    textEncoder: createTextEncoder(
      { model_type: 'distilbert', vocab_size: tokenizer.vocabSize, dim: 32, n_layers: 1, n_heads: 2, hidden_dim: 64, max_position_embeddings: 64 },
      { seed: 2 },
    ),
    projectionDim: 16,
    seed: 3,
  });
  // Real images would come from ClipImageProcessor.processFile(...) and toPixelTensor(...).
  const pixelValues = tf.randomUniform([4, 3, 32, 32], -2, 2, 'float32', 4) as tf.Tensor4D;
  const captions = ['a black dog runs', 'two children on a swing', 'a man climbs a snowy mountain', 'a red car'];
  const { inputIds, attentionMask } = tokenizer.tokenize(captions, 16);
  const batch = { pixelValues, inputIds, attentionMask };

  // Train only the new CNN, the heads and the temperature; the text tower stays as built (as with a
  // pretrained one you want to keep).
  model.textEncoder.freeze();
  const evalLoss = (m: CLIPModel): number => tf.tidy(() => m.loss(batch).arraySync() as number);
  const lossBefore = evalLoss(model);
  const optimizer = tf.train.adam(1e-3);
  const cost = optimizer.minimize(() => model.loss(batch, { training: true }), true, model.trainableVariables());
  cost?.dispose();
  optimizer.dispose();
  const lossAfter = evalLoss(model);

  await saveCLIPModel(model, checkpointDir);
  const loaded = await loadCLIPModel(checkpointDir); // rebuilds 'tiny-cnn' through the registry
  const maxDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.encodeImages(pixelValues), loaded.encodeImages(pixelValues)))).arraySync() as number);

  tf.dispose([pixelValues, inputIds, attentionMask]);
  model.dispose();
  loaded.dispose();
  return { lossBefore, lossAfter, maxDiff };
}
// #endregion example

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, registeredEncoders } from '@clip-ts/core';
import { describe, expect, it } from 'vitest';

const TOKENIZER_DIR = fileURLToPath(new URL('./fixtures/tokenizer/', import.meta.url));
const DOC = fileURLToPath(new URL('../../../docs/extending.md', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

describe('docs/extending.md example', () => {
  it("the doc's ts block is this file's example region, verbatim", async () => {
    const doc = await readFile(DOC, 'utf8');
    const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(blocks).toHaveLength(1);
    const self = await readFile(SELF, 'utf8');
    const region = /\/\/ #region example[^\n]*\n([\s\S]*?)\/\/ #endregion example/.exec(self)?.[1];
    expect(region).toBeDefined();
    expect(blocks[0]).toBe(region);
  });

  it('registers tiny-cnn and builds it from a config', async () => {
    await initBackend('cpu');
    expect(registeredEncoders().image).toContain('tiny-cnn');
    const enc = createImageEncoder({ model_type: 'tiny-cnn', image_size: 8, patch: 2, channels: 4, pool: 2, hidden_size: 6 });
    expect(enc).toBeInstanceOf(TinyCnn);
    expect(enc.hiddenSize).toBe(6);
    enc.dispose();
  });

  it('is a real convolution: encode equals tf.conv2d with the PyTorch-layout stateDict (cpu)', async () => {
    await initBackend('cpu');
    const cfg: TinyCnnConfig = { model_type: 'tiny-cnn', image_size: 16, patch: 4, channels: 5, pool: 2, hidden_size: 7 };
    const enc = new TinyCnn(cfg, { seed: 9 });
    const x = tf.randomNormal([2, 3, 16, 16], 0, 1, 'float32', 5) as tf.Tensor4D;
    const sd = enc.stateDict();
    expect(sd.get('conv1.weight')?.shape).toEqual([5, 3, 4, 4]);
    expect(sd.get('conv2.weight')?.shape).toEqual([7, 5, 2, 2]);
    const diff = tf.tidy(() => {
      // OIHW (PyTorch) → HWIO (tf.conv2d), NCHW → NHWC.
      const w = (k: string) => tf.transpose(sd.get(k) as tf.Tensor4D, [2, 3, 1, 0]) as tf.Tensor4D;
      const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
      const c1 = tf.relu(tf.add(tf.conv2d(nhwc, w('conv1.weight'), 4, 'valid'), sd.get('conv1.bias') as tf.Tensor)) as tf.Tensor4D;
      const c2 = tf.relu(tf.add(tf.conv2d(c1, w('conv2.weight'), 2, 'valid'), sd.get('conv2.bias') as tf.Tensor));
      const ref = tf.mean(c2, [1, 2]);
      return tf.max(tf.abs(tf.sub(ref, enc.encode(x)))).arraySync() as number;
    });
    expect(diff).toBeLessThan(1e-5);
    tf.dispose([x, ...sd.values()]);
    enc.dispose();
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`trains one step in a CLIPModel, saves and loads back (${backend})`, async () => {
      await initBackend(backend);
      const dir = await mkdtemp(join(tmpdir(), 'clip-ext-'));
      try {
        const before = tf.memory().numTensors;
        const r = await trainSaveLoad(TOKENIZER_DIR, dir);
        expect(Number.isFinite(r.lossBefore)).toBe(true);
        expect(r.lossAfter).toBeLessThan(r.lossBefore);
        expect(r.maxDiff).toBeLessThan(1e-6);
        expect(tf.memory().numTensors).toBe(before);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
