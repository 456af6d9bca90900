import * as tf from '@tensorflow/tfjs-core';
import type { EncodeOptions, NamedVariable, TensorData } from './encoder.js';
import { ConfigError } from './errors.js';
import { gelu, layerNorm, linear } from './ops.js';
import { Rng } from './rng.js';
import { loadParams, toTorchLayout, type ParamSpec } from './state-dict.js';

/**
 * Projection heads mapping a tower's features into the shared embedding space.
 *
 * - `linear` (the reference study): Linear(in→proj) → LayerNorm. Weights: `linear.weight` [proj, in],
 *   `linear.bias`, `layer_norm.weight`, `layer_norm.bias`.
 * - `mlp` (the ProjectionHead of the popular "OpenAI CLIP from scratch" tutorial):
 *   p = Linear(in→proj)(x); y = LayerNorm(Dropout(Linear(proj→proj)(GELU(p))) + p). Weights:
 *   `projection.{weight,bias}`, `fc.{weight,bias}`, `layer_norm.{weight,bias}`.
 *
 * - `linear-no-bias` (HF `CLIPModel`'s `visual_projection` / `text_projection`): a bias-free
 *   Linear(in→proj), no LayerNorm. Weight: `weight` [proj, in]. Init as HF's: N(0, 1/in).
 *
 * Names and layouts (Linear weights [out, in]) are PyTorch's, so a head's stateDict loads into the
 * equivalent nn.Module with `load_state_dict`.
 */
export type ProjectionHeadKind = 'linear' | 'mlp' | 'linear-no-bias';

/** Every ProjectionHeadKind, for validation (config schemas, CLI). */
export const PROJECTION_HEAD_KINDS = ['linear', 'mlp', 'linear-no-bias'] as const satisfies readonly ProjectionHeadKind[];

export interface ProjectionHeadOptions {
  inputDim: number;
  projectionDim?: number;
  kind?: ProjectionHeadKind;
  /** Dropout rate of the mlp head (ignored by `linear`). Default 0.1. */
  dropout?: number;
  /** nn.LayerNorm's default. */
  layerNormEps?: number;
  seed?: number;
}

/** PyTorch nn.Linear's default init: weight and bias ~ U(−1/√in, 1/√in). Kernel in tfjs layout [in, out]. */
function linearParams(inDim: number, outDim: number, rng: Rng): { kernel: tf.Variable; bias: tf.Variable } {
  const bound = 1 / Math.sqrt(inDim);
  return tf.tidy(() => ({
    kernel: tf.variable(tf.randomUniform([inDim, outDim], -bound, bound, 'float32', rng.nextSeed())),
    bias: tf.variable(tf.randomUniform([outDim], -bound, bound, 'float32', rng.nextSeed())),
  }));
}

export class ProjectionHead {
  readonly inputDim: number;
  readonly projectionDim: number;
  readonly kind: ProjectionHeadKind;
  readonly dropout: number;
  readonly layerNormEps: number;
  private readonly params: ParamSpec[];
  private readonly dropoutRng: Rng;

  constructor(options: ProjectionHeadOptions) {
    const { inputDim, projectionDim = 256, kind = 'linear', dropout = 0.1, layerNormEps = 1e-5, seed = 0 } = options;
    for (const [k, v] of Object.entries({ inputDim, projectionDim })) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new ConfigError(`ProjectionHead: ${k} must be a positive integer, got ${v}`);
    }
    if (!PROJECTION_HEAD_KINDS.includes(kind)) {
      throw new ConfigError(`ProjectionHead: kind must be one of ${PROJECTION_HEAD_KINDS.join(', ')}, got '${String(kind)}'`);
    }
    if (!(dropout >= 0 && dropout < 1)) throw new ConfigError(`ProjectionHead: dropout must be in [0, 1), got ${dropout}`);
    this.inputDim = inputDim;
    this.projectionDim = projectionDim;
    this.kind = kind;
    this.dropout = dropout;
    this.layerNormEps = layerNormEps;
    const rng = new Rng(seed);
    this.dropoutRng = rng.fork(0xd0);

    if (kind === 'linear-no-bias') {
      const std = 1 / Math.sqrt(inputDim);
      const kernel = tf.tidy(() => tf.variable(tf.randomNormal([inputDim, projectionDim], 0, std, 'float32', rng.nextSeed())));
      this.params = [{ key: 'weight', variable: kernel, layout: 'linear' }];
      return;
    }
    const first = linearParams(inputDim, projectionDim, rng);
    const firstName = kind === 'linear' ? 'linear' : 'projection';
    this.params = [
      { key: `${firstName}.weight`, variable: first.kernel, layout: 'linear' },
      { key: `${firstName}.bias`, variable: first.bias, layout: 'same' },
    ];
    if (kind === 'mlp') {
      const fc = linearParams(projectionDim, projectionDim, rng);
      this.params.push(
        { key: 'fc.weight', variable: fc.kernel, layout: 'linear' },
        { key: 'fc.bias', variable: fc.bias, layout: 'same' },
      );
    }
    // tidy: the initial-value tensors would otherwise stay alive next to the variables.
    this.params.push(
      { key: 'layer_norm.weight', variable: tf.tidy(() => tf.variable(tf.ones([projectionDim]))), layout: 'same' },
      { key: 'layer_norm.bias', variable: tf.tidy(() => tf.variable(tf.zeros([projectionDim]))), layout: 'same' },
    );
  }

  private v(key: string): tf.Variable {
    return (this.params.find((p) => p.key === key) as ParamSpec).variable;
  }

  /** [batch, inputDim] → [batch, projectionDim] (not normalised). Returns a new tensor the caller owns. */
  apply(x: tf.Tensor2D, options: EncodeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const ln = (h: tf.Tensor): tf.Tensor =>
        layerNorm(h, this.v('layer_norm.weight') as tf.Tensor1D, this.v('layer_norm.bias') as tf.Tensor1D, this.layerNormEps);
      if (this.kind === 'linear-no-bias') return linear(x, this.v('weight') as tf.Tensor2D) as tf.Tensor2D;
      if (this.kind === 'linear') {
        return ln(linear(x, this.v('linear.weight') as tf.Tensor2D, this.v('linear.bias') as tf.Tensor1D)) as tf.Tensor2D;
      }
      const projected = linear(x, this.v('projection.weight') as tf.Tensor2D, this.v('projection.bias') as tf.Tensor1D);
      let h = linear(gelu(projected), this.v('fc.weight') as tf.Tensor2D, this.v('fc.bias') as tf.Tensor1D);
      if (options.training && this.dropout > 0) h = tf.dropout(h, this.dropout, undefined, this.dropoutRng.nextSeed());
      return ln(tf.add(h, projected)) as tf.Tensor2D;
    });
  }

  /** Weights named as in PyTorch (see the class comment); biases and LayerNorm are `noDecay`. */
  namedVariables(): NamedVariable[] {
    // Only Linear weight matrices decay (the rule PyTorch recipes use); biases and LayerNorm do not.
    return this.params.map((p) => ({ name: p.key, variable: p.variable, noDecay: p.layout !== 'linear' }));
  }

  trainableVariables(): tf.Variable[] {
    return this.params.filter((p) => p.variable.trainable).map((p) => p.variable);
  }

  /** PyTorch layout (Linear weights [out, in]). Caller owns the returned tensors. */
  stateDict(): Map<string, tf.Tensor> {
    return new Map(this.params.map((p) => [p.key, toTorchLayout(p)]));
  }

  /** Load PyTorch-layout weights (prefix stripped); missing keys or wrong shapes → CheckpointError naming `source`. */
  loadStateDict(weights: ReadonlyMap<string, TensorData>, source: string): void {
    loadParams(this.params, weights, source);
  }

  dispose(): void {
    for (const p of this.params) p.variable.dispose();
  }
}
