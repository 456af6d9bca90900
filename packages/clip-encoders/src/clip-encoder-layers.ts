import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { layerNorm, linear, type Rng } from '@clip-ts/core';
import { multiHeadAttention } from './attention.js';
import { normalInit } from './init.js';
import { ACTIVATIONS, activation, type ActivationName } from './layers.js';
import { HfTower, type Dense, type Norm } from './tower.js';
import type { WeightGroup } from './weights.js';

/**
 * What HF's CLIPVisionTransformer and CLIPTextTransformer share (modeling_clip.py): the `CLIPEncoder`
 * stack of pre-LN layers (`layer_norm1` → `self_attn.{q,k,v,out}_proj` → residual → `layer_norm2` →
 * `mlp.fc1/fc2` → residual) and CLIPPreTrainedModel's per-weight init. The towers (clip-vision.ts,
 * clip-text.ts) add their embeddings, masks and pooling.
 */

/** Config keys both HF CLIP tower configs have, with HF's shared defaults. */
export const clipEncoderKeys = {
  num_hidden_layers: z.number().int().min(0).default(12),
  hidden_act: z.enum(ACTIVATIONS).default('quick_gelu'),
  layer_norm_eps: z.number().positive().default(1e-5),
  attention_dropout: z.number().min(0).max(1).default(0),
  initializer_range: z.number().positive().default(0.02),
  initializer_factor: z.number().positive().default(1),
};

export interface CLIPEncoderConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  hidden_act: ActivationName;
  layer_norm_eps: number;
  attention_dropout: number;
  initializer_factor: number;
}

/** Issue for zod's superRefine when the heads do not divide the hidden size. */
export function headsDivideHidden(c: { hidden_size: number; num_attention_heads: number }, ctx: z.RefinementCtx): void {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['hidden_size'],
      message: `hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}`,
    });
  }
}

/** One `CLIPEncoderLayer`'s weights, named as HF names them. */
export interface CLIPEncoderLayer {
  layer_norm1: Norm;
  q_proj: Dense;
  k_proj: Dense;
  v_proj: Dense;
  out_proj: Dense;
  layer_norm2: Norm;
  fc1: Dense;
  fc2: Dense;
}

export abstract class CLIPTower extends HfTower {
  /**
   * `rng` draws the init; null skips it (weights start at zeros/ones) when a checkpoint will overwrite
   * them anyway.
   */
  protected constructor(
    kind: string,
    numBlocks: number,
    private readonly initRng: Rng | null,
  ) {
    super(kind, numBlocks, () => null);
  }

  /** N(0, std²) values (CLIPPreTrainedModel._init_weights draws every matrix and embedding so), or zeros. */
  protected normal(size: number, std: number): Float32Array {
    return this.initRng ? normalInit(this.initRng, size, std) : new Float32Array(size);
  }

  /** nn.Linear(inp, out, bias) with an N(0, std²) weight and a zero bias (HF zeroes every Linear bias). */
  protected linearParam(name: string, out: number, inp: number, std: number, group: WeightGroup, bias = true): Dense {
    return {
      kernel: this.param(`${name}.weight`, [out, inp], 'linear', group, this.normal(out * inp, std)) as tf.Tensor as tf.Tensor2D,
      bias: bias ? (this.param(`${name}.bias`, [out], 'plain', group, 'zeros') as tf.Tensor as tf.Tensor1D) : undefined,
    };
  }

  /** `encoder.layers.{i}.*` with CLIPAttention / CLIPMLP init stds (scaled by depth, as HF does). */
  protected buildEncoder(c: CLIPEncoderConfig): CLIPEncoderLayer[] {
    const D = c.hidden_size;
    const f = c.initializer_factor;
    const inProjStd = D ** -0.5 * (2 * Math.max(c.num_hidden_layers, 1)) ** -0.5 * f;
    const outProjStd = D ** -0.5 * f;
    const fcStd = (2 * D) ** -0.5 * f;
    const layers: CLIPEncoderLayer[] = [];
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `encoder.layers.${i}.`;
      layers.push({
        layer_norm1: this.norm(`${p}layer_norm1`, D, i),
        q_proj: this.linearParam(`${p}self_attn.q_proj`, D, D, inProjStd, i),
        k_proj: this.linearParam(`${p}self_attn.k_proj`, D, D, inProjStd, i),
        v_proj: this.linearParam(`${p}self_attn.v_proj`, D, D, inProjStd, i),
        out_proj: this.linearParam(`${p}self_attn.out_proj`, D, D, outProjStd, i),
        layer_norm2: this.norm(`${p}layer_norm2`, D, i),
        fc1: this.linearParam(`${p}mlp.fc1`, c.intermediate_size, D, fcStd, i),
        fc2: this.linearParam(`${p}mlp.fc2`, D, c.intermediate_size, inProjStd, i),
      });
    }
    return layers;
  }
}

/**
 * CLIPEncoder.forward: every layer is h + attn(layer_norm1(h)), then h + mlp(layer_norm2(h)). `bias` (added
 * to the attention scores) carries the text tower's causal + padding mask; `dropProbs` is attention
 * dropout. Caller owns the result; `h` is not disposed.
 */
export function runCLIPEncoder(
  h: tf.Tensor3D,
  layers: readonly CLIPEncoderLayer[],
  c: CLIPEncoderConfig,
  bias: tf.Tensor | undefined,
  dropProbs: (p: tf.Tensor) => tf.Tensor,
): tf.Tensor3D {
  return tf.tidy(() => {
    let x: tf.Tensor = h;
    for (const l of layers) {
      const t = layerNorm(x, l.layer_norm1.gamma, l.layer_norm1.beta, c.layer_norm_eps);
      const q = linear(t, l.q_proj.kernel, l.q_proj.bias) as tf.Tensor3D;
      const k = linear(t, l.k_proj.kernel, l.k_proj.bias) as tf.Tensor3D;
      const v = linear(t, l.v_proj.kernel, l.v_proj.bias) as tf.Tensor3D;
      const ctx = multiHeadAttention(q, k, v, c.num_attention_heads, { bias, dropout: dropProbs });
      x = tf.add(x, linear(ctx, l.out_proj.kernel, l.out_proj.bias));
      const u = layerNorm(x, l.layer_norm2.gamma, l.layer_norm2.beta, c.layer_norm_eps);
      x = tf.add(x, linear(activation(c.hidden_act, linear(u, l.fc1.kernel, l.fc1.bias)), l.fc2.kernel, l.fc2.bias));
    }
    return x as tf.Tensor3D;
  });
}
