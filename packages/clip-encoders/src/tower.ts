import type * as tf from '@tensorflow/tfjs-core';
import type { NamedVariable, TensorData } from '@clip-ts/core';
import { TowerWeights, type WeightGroup, type WeightLayout } from './weights.js';

/** An nn.Linear's weights in tfjs layout (kernel [in, out]). */
export interface Dense {
  kernel: tf.Tensor2D;
  bias?: tf.Tensor1D;
}

/** An nn.LayerNorm's affine weights. */
export interface Norm {
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
}

export type InitKind = 'random' | 'zeros' | 'ones';

/**
 * What the HF towers share: creating their weights (HF names, seeded init) and the Encoder methods that
 * only touch the weight store (naming, freezing, state dicts). The forward passes live in the towers.
 */
export abstract class HfTower {
  protected readonly weights: TowerWeights;

  /**
   * `sample(size)` draws the tower's random init (HF's per-architecture distribution) or returns null
   * to start from zeros, when a checkpoint will overwrite the weights anyway.
   */
  protected constructor(
    kind: string,
    private readonly numBlocks: number,
    private readonly sample: (size: number) => Float32Array | null,
  ) {
    this.weights = new TowerWeights(kind);
  }

  /** Initial values of `size` elements. LayerNorm/bias rules are HF's: ones/zeros, never random. */
  protected initValues(size: number, init: InitKind): Float32Array {
    if (init === 'random') return this.sample(size) ?? new Float32Array(size);
    return new Float32Array(size).fill(init === 'ones' ? 1 : 0);
  }

  /** Create a weight (HF name and shape); rank-1 weights (biases, LayerNorm) are excluded from decay. */
  protected param(name: string, hfShape: number[], layout: WeightLayout, group: WeightGroup, init: InitKind | Float32Array): tf.Variable {
    const values = init instanceof Float32Array ? init : this.initValues(hfShape.reduce((a, b) => a * b, 1), init);
    return this.weights.add(name, hfShape, layout, values, { noDecay: hfShape.length === 1, group });
  }

  /** nn.Linear(inp, out) named `${name}.weight` / `${name}.bias`: random weight, zero bias. */
  protected dense(name: string, out: number, inp: number, group: WeightGroup, bias = true): Dense {
    return {
      kernel: this.param(`${name}.weight`, [out, inp], 'linear', group, 'random') as tf.Tensor as tf.Tensor2D,
      bias: bias ? (this.param(`${name}.bias`, [out], 'plain', group, 'zeros') as tf.Tensor as tf.Tensor1D) : undefined,
    };
  }

  /** nn.LayerNorm(dim): weight ones, bias zeros. */
  protected norm(name: string, dim: number, group: WeightGroup): Norm {
    return {
      gamma: this.param(`${name}.weight`, [dim], 'plain', group, 'ones') as tf.Tensor as tf.Tensor1D,
      beta: this.param(`${name}.bias`, [dim], 'plain', group, 'zeros') as tf.Tensor as tf.Tensor1D,
    };
  }

  namedVariables(): NamedVariable[] {
    return this.weights.named();
  }

  trainableVariables(): tf.Variable[] {
    return this.weights.trainable();
  }

  freeze(): void {
    this.weights.setTrainable(false);
  }

  unfreeze(): void {
    this.weights.setTrainable(true);
  }

  /**
   * Train only the last `n` blocks and what follows them (ViT's final LayerNorm and pooler); embeddings
   * and earlier blocks are frozen.
   */
  freezeAllButLast(n: number): void {
    this.weights.freezeAllButLast(n, this.numBlocks);
  }

  get frozen(): boolean {
    return this.weights.frozen;
  }

  /** Weights in HF/PyTorch layout (Linear [out, in], Conv2d [out, c, kh, kw]); the caller owns them. */
  stateDict(): Map<string, tf.Tensor> {
    return this.weights.stateDict();
  }

  loadStateDict(weights: ReadonlyMap<string, TensorData>, source: string): void {
    this.weights.load(weights, source);
  }

  dispose(): void {
    this.weights.dispose();
  }
}
