import * as tf from '@tensorflow/tfjs-core';
import { gelu, Rng, type EncoderFactoryOptions } from '@clip-ts/core';

export interface TowerOptions extends EncoderFactoryOptions {
  /**
   * false skips the random init (weights start at zeros/ones) when a checkpoint will overwrite them
   * anyway: drawing 86M normals in JS for ViT-base would take seconds. Default true.
   */
  initialize?: boolean;
  /**
   * Recompute each transformer block's activations in the backward pass instead of keeping them (HF's
   * `gradient_checkpointing`): far less memory for training, one more forward pass of the tower. Default false.
   */
  gradientCheckpointing?: boolean;
}

/** Activations HF configs name (`hidden_act` / `activation`). */
export const ACTIVATIONS = ['gelu', 'relu', 'gelu_new', 'gelu_pytorch_tanh', 'quick_gelu'] as const;
export type ActivationName = (typeof ACTIVATIONS)[number];

/** Apply an HF activation; caller owns the result. `gelu` is the exact erf form (HF/PyTorch default). */
export function activation(name: ActivationName, x: tf.Tensor): tf.Tensor {
  if (name === 'gelu') return gelu(x);
  if (name === 'relu') return tf.relu(x);
  // OpenAI CLIP's approximation (HF QuickGELUActivation): x·σ(1.702·x).
  if (name === 'quick_gelu') return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))));
  // gelu_new / gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  return tf.tidy(() => {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
  });
}

/**
 * Dropout with seeds drawn from the tower's own Rng, so a seeded training run drops the same units
 * every time. `apply` returns its input unchanged (same tensor) when off; otherwise a new tensor.
 */
export class SeededDropout {
  constructor(private readonly rng: Rng) {}

  /** The generator the seeds come from; a checkpointed block rewinds it to redraw the same masks. */
  get generator(): Rng {
    return this.rng;
  }

  apply(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
    if (!training || rate <= 0) return x;
    return tf.dropout(x, rate, undefined, this.rng.nextSeed());
  }
}

/** Row 0 of every sequence: [batch, seq, hidden] → [batch, hidden]. Caller owns the result. */
export function firstToken(h: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, , d] = h.shape;
    return tf.reshape(tf.slice(h, [0, 0, 0], [b, 1, d]), [b, d]) as tf.Tensor2D;
  });
}
