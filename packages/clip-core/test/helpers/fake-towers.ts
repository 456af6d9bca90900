/**
 * Tiny towers for tests (the real ViT/DistilBERT live in @clip-ts/encoders):
 * - image `test-meanpool`: mean over H×W per channel → Linear(channels → hidden);
 * - text `test-bag`: embedding lookup, masked mean over tokens → Linear(dim → hidden).
 * Registered under those model_types so CLIPModel.load can rebuild them.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Rng,
  linear,
  loadParams,
  registerImageEncoder,
  registerTextEncoder,
  toTorchLayout,
  type EncodeOptions,
  type EncoderConfig,
  type ImageEncoder,
  type NamedVariable,
  type ParamSpec,
  type TensorData,
  type TextEncoder,
  type TextInput,
} from '../../src/index.js';

abstract class FakeTower<I> {
  protected readonly params: ParamSpec[] = [];
  /** Test hook: make stateDict() throw (simulates a failure in the middle of save). */
  failStateDict = false;
  abstract readonly hiddenSize: number;
  abstract encode(input: I, options?: EncodeOptions): tf.Tensor2D;
  abstract getConfig(): EncoderConfig;

  protected param(key: string, init: tf.Tensor, layout: ParamSpec['layout']): tf.Variable {
    const variable = tf.variable(init);
    init.dispose();
    this.params.push({ key, variable, layout });
    return variable;
  }
  namedVariables(): NamedVariable[] {
    return this.params.map((p) => ({ name: p.key, variable: p.variable, noDecay: p.key.endsWith('bias') }));
  }
  trainableVariables(): tf.Variable[] {
    return this.params.filter((p) => p.variable.trainable).map((p) => p.variable);
  }
  freeze(): void {
    for (const p of this.params) p.variable.trainable = false;
  }
  unfreeze(): void {
    for (const p of this.params) p.variable.trainable = true;
  }
  get frozen(): boolean {
    return this.params.every((p) => !p.variable.trainable);
  }
  stateDict(): Map<string, tf.Tensor> {
    if (this.failStateDict) throw new Error('injected stateDict failure');
    return new Map(this.params.map((p) => [p.key, toTorchLayout(p)]));
  }
  loadStateDict(weights: ReadonlyMap<string, TensorData>, source: string): void {
    loadParams(this.params, weights, source);
  }
  dispose(): void {
    for (const p of this.params) p.variable.dispose();
  }
}

function intOf(config: EncoderConfig, key: string): number {
  const v = config[key];
  if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new ConfigError(`${config.model_type}: ${key} must be a positive integer`);
  return v as number;
}

export class MeanPoolImageTower extends FakeTower<tf.Tensor4D> implements ImageEncoder {
  readonly hiddenSize: number;
  private readonly kernel: tf.Variable;
  private readonly bias: tf.Variable;
  constructor(private readonly config: EncoderConfig, seed = 0) {
    super();
    const channels = intOf(config, 'num_channels');
    this.hiddenSize = intOf(config, 'hidden_size');
    const rng = new Rng(seed);
    this.kernel = this.param('proj.weight', tf.randomNormal([channels, this.hiddenSize], 0, 1, 'float32', rng.nextSeed()), 'linear');
    this.bias = this.param('proj.bias', tf.randomNormal([this.hiddenSize], 0, 0.1, 'float32', rng.nextSeed()), 'same');
  }
  encode(pixels: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => linear(tf.mean(pixels, [2, 3]), this.kernel as tf.Tensor2D, this.bias as tf.Tensor1D) as tf.Tensor2D);
  }
  getConfig(): EncoderConfig {
    return { ...this.config };
  }
}

export class BagOfWordsTextTower extends FakeTower<TextInput> implements TextEncoder {
  readonly hiddenSize: number;
  private readonly embeddings: tf.Variable;
  private readonly kernel: tf.Variable;
  constructor(private readonly config: EncoderConfig, seed = 0) {
    super();
    const vocab = intOf(config, 'vocab_size');
    const dim = intOf(config, 'dim');
    this.hiddenSize = intOf(config, 'hidden_size');
    const rng = new Rng(seed);
    this.embeddings = this.param('embeddings.weight', tf.randomNormal([vocab, dim], 0, 1, 'float32', rng.nextSeed()), 'same');
    this.kernel = this.param('proj.weight', tf.randomNormal([dim, this.hiddenSize], 0, 1, 'float32', rng.nextSeed()), 'linear');
  }
  encode(text: TextInput): tf.Tensor2D {
    return tf.tidy(() => {
      const e = tf.gather(this.embeddings, text.inputIds); // [B, L, dim]
      const m = tf.expandDims(tf.cast(text.attentionMask, 'float32'), 2);
      const pooled = tf.div(tf.sum(tf.mul(e, m), 1), tf.maximum(tf.sum(m, 1), 1));
      return linear(pooled, this.kernel as tf.Tensor2D) as tf.Tensor2D;
    });
  }
  getConfig(): EncoderConfig {
    return { ...this.config };
  }
}

export const IMAGE_CONFIG: EncoderConfig = { model_type: 'test-meanpool', num_channels: 3, hidden_size: 12 };
export const TEXT_CONFIG: EncoderConfig = { model_type: 'test-bag', vocab_size: 20, dim: 6, hidden_size: 10 };

export function registerFakeTowers(): void {
  registerImageEncoder('test-meanpool', (config, { seed }) => new MeanPoolImageTower(config, seed));
  registerTextEncoder('test-bag', (config, { seed }) => new BagOfWordsTextTower(config, seed));
}

/** A deterministic batch: B images 3×4×4 and B captions of length 5 (last tokens padded). */
export function fakeBatch(b: number, seed = 1): { pixelValues: tf.Tensor4D; inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D } {
  const rng = new Rng(seed);
  const ids: number[] = [];
  const mask: number[] = [];
  for (let i = 0; i < b; i++) {
    const len = 2 + rng.int(4);
    for (let j = 0; j < 5; j++) {
      ids.push(j < len ? 1 + rng.int(19) : 0);
      mask.push(j < len ? 1 : 0);
    }
  }
  return {
    pixelValues: tf.randomNormal([b, 3, 4, 4], 0, 1, 'float32', rng.nextSeed()) as tf.Tensor4D,
    inputIds: tf.tensor2d(ids, [b, 5], 'int32'),
    attentionMask: tf.tensor2d(mask, [b, 5], 'int32'),
  };
}
