import type * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from './errors.js';

/** Tokenised captions: both int32 [batch, seqLen]; attentionMask is 1 for real tokens, 0 for padding. */
export interface TextInput {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
}

/** Images as the towers take them: float32 [batch, channels, height, width] (NCHW, like HF `pixel_values`). */
export type ImageInput = tf.Tensor4D;

export interface EncodeOptions {
  /** Enables dropout and other train-only behaviour. Default false. */
  training?: boolean;
}

/** A weight with its Hugging Face–style name, relative to the tower (no `vision_model.` prefix). */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
  /** LayerNorm weights, biases, embeddings' norms: excluded from weight decay by the trainer. */
  noDecay: boolean;
  /**
   * State the forward pass updates in training, never the optimizer (BatchNorm running statistics and
   * `num_batches_tracked`): never trainable, but saved, loaded and snapshotted like the weights.
   */
  buffer?: boolean;
}

/** Decoded tensor data as read from safetensors (float types widened to float32, int types to int32). */
export interface TensorData {
  /** dtype as stored on disk (`F32`, `F16`, `BF16`, `I64`, `I32`, ...). */
  storedDtype: string;
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/**
 * JSON-serialisable tower config. `model_type` selects the factory in the registry (HF convention:
 * `vit`, `distilbert`); the other keys are the tower's own (HF config.json keys for HF towers).
 */
export interface EncoderConfig {
  model_type: string;
  [key: string]: unknown;
}

/**
 * What every tower implements. `encode` returns a NEW tensor [batch, hiddenSize] that the caller owns
 * and must dispose (or create inside tf.tidy); it never disposes its input.
 */
export interface Encoder<I> {
  readonly hiddenSize: number;
  encode(input: I, options?: EncodeOptions): tf.Tensor2D;
  /** Every weight, frozen or not, in a stable order, named as in the HF checkpoint. */
  namedVariables(): NamedVariable[];
  /** The weights that train now (not frozen). */
  trainableVariables(): tf.Variable[];
  /** Freeze the whole tower (no gradients, no updates). */
  freeze(): void;
  unfreeze(): void;
  /** True when no weight of the tower is trainable. */
  readonly frozen: boolean;
  /**
   * Weights in PyTorch / HF layout (Linear [out, in], Conv2d [out, in, kh, kw]) keyed as in
   * namedVariables. The caller owns the returned tensors.
   */
  stateDict(): Map<string, tf.Tensor>;
  /**
   * Load HF-layout weights (prefix already stripped). Unknown keys are ignored; missing keys (all of them
   * listed) or a shape mismatch (key and both shapes) throw CheckpointError naming `source`.
   */
  loadStateDict(weights: ReadonlyMap<string, TensorData>, source: string): void;
  /** Config that rebuilds this tower through the registry. */
  getConfig(): EncoderConfig;
  dispose(): void;
}

export type ImageEncoder = Encoder<ImageInput>;
export type TextEncoder = Encoder<TextInput>;

export interface EncoderFactoryOptions {
  /** Seed for weight initialisation; the same seed gives the same weights. */
  seed?: number;
}

export type ImageEncoderFactory = (config: EncoderConfig, options: EncoderFactoryOptions) => ImageEncoder;
export type TextEncoderFactory = (config: EncoderConfig, options: EncoderFactoryOptions) => TextEncoder;

const imageFactories = new Map<string, ImageEncoderFactory>();
const textFactories = new Map<string, TextEncoderFactory>();

/** Make `model_type` buildable by CLIPModel.load and the CLI. Re-registering a name replaces it. */
export function registerImageEncoder(modelType: string, factory: ImageEncoderFactory): void {
  imageFactories.set(modelType, factory);
}

export function registerTextEncoder(modelType: string, factory: TextEncoderFactory): void {
  textFactories.set(modelType, factory);
}

export function registeredEncoders(): { image: string[]; text: string[] } {
  return { image: [...imageFactories.keys()].sort(), text: [...textFactories.keys()].sort() };
}

function lookup<F>(kind: string, table: Map<string, F>, config: EncoderConfig): F {
  const type = (config as { model_type?: unknown }).model_type;
  if (typeof type !== 'string') throw new ConfigError(`${kind} encoder config: model_type must be a string`);
  const factory = table.get(type);
  if (!factory) {
    const known = [...table.keys()].sort().join(', ') || '(none registered; import @clip-ts/encoders)';
    throw new ConfigError(`${kind} encoder config: unknown model_type '${type}'; registered: ${known}`);
  }
  return factory;
}

export function createImageEncoder(config: EncoderConfig, options: EncoderFactoryOptions = {}): ImageEncoder {
  return lookup('image', imageFactories, config)(config, options);
}

export function createTextEncoder(config: EncoderConfig, options: EncoderFactoryOptions = {}): TextEncoder {
  return lookup('text', textFactories, config)(config, options);
}
