import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import {
  ConfigError,
  formatZodIssues,
  layerNorm,
  linear,
  registerImageEncoder,
  Rng,
  ShapeError,
  type EncodeOptions,
  type EncoderConfig,
  type ImageEncoder,
  SIZE_BOUNDS,
  type ImageInput,
} from '@clip-ts/core';
import { multiHeadAttention } from './attention.js';
import { checkpointBlock } from './checkpoint.js';
import { truncNormalInit } from './init.js';
import { ACTIVATIONS, activation, firstToken, SeededDropout, type TowerOptions } from './layers.js';
import { PatchDropout } from './patch-dropout.js';
import { HfTower, type Dense, type Norm } from './tower.js';
import type { WeightGroup } from './weights.js';

/**
 * ViT image tower with the semantics and weight names of HF transformers' `ViTModel`
 * (modeling_vit.py): patch embedding → [CLS] + position embeddings → pre-LN encoder layers → final
 * LayerNorm → optional pooler (dense + tanh on [CLS]).
 */

const positiveInt = z.number().int().positive();
const rate = z.number().min(0).max(1);
/** Bounded so a hostile config.json cannot ask for a huge allocation (see size-guard in core). */
const side = positiveInt.max(SIZE_BOUNDS.imageSide);

/** HF ViTConfig keys (defaults = HF's), plus clip-ts' `feature` and `add_pooling_layer`. Extra keys are kept. */
export const ViTConfigSchema = z
  .looseObject({
    model_type: z.literal('vit'),
    hidden_size: positiveInt.max(SIZE_BOUNDS.width).default(768),
    num_hidden_layers: z.number().int().min(0).max(SIZE_BOUNDS.layers).default(12),
    num_attention_heads: positiveInt.max(SIZE_BOUNDS.width).default(12),
    intermediate_size: positiveInt.max(SIZE_BOUNDS.width).default(3072),
    hidden_act: z.enum(ACTIVATIONS).default('gelu'),
    hidden_dropout_prob: rate.default(0),
    attention_probs_dropout_prob: rate.default(0),
    initializer_range: z.number().positive().default(0.02),
    layer_norm_eps: z.number().positive().default(1e-12),
    image_size: z.union([side, z.tuple([side, side])]).default(224),
    patch_size: z.union([side, z.tuple([side, side])]).default(16),
    num_channels: positiveInt.max(SIZE_BOUNDS.channels).default(3),
    qkv_bias: z.boolean().default(true),
    /** ViTModel(add_pooling_layer=...): build the pooler. Default: only when `feature` is 'pooler'. */
    add_pooling_layer: z.boolean().optional(),
    /** What `encode` returns: [CLS] of the last hidden state (the reference) or the pooler output. */
    feature: z.enum(['cls', 'pooler']).default('cls'),
    /** Training only: fraction of patch tokens dropped (FLIP; open_clip's vision_cfg name). Not an HF key. */
    patch_dropout: z.number().min(0).lt(1).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.hidden_size % c.num_attention_heads !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['hidden_size'],
        message: `hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}`,
      });
    }
    const [ih, iw] = pair(c.image_size);
    const [ph, pw] = pair(c.patch_size);
    if (ih % ph !== 0 || iw % pw !== 0) {
      ctx.addIssue({ code: 'custom', path: ['image_size'], message: `image_size ${ih}x${iw} is not divisible by patch_size ${ph}x${pw}` });
    }
    if (c.feature === 'pooler' && c.add_pooling_layer === false) {
      ctx.addIssue({ code: 'custom', path: ['feature'], message: "feature 'pooler' needs add_pooling_layer: true" });
    }
  });

export type ViTConfig = z.infer<typeof ViTConfigSchema>;

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

/** Validate a ViT config (an HF config.json object); `source` names it in the ConfigError. */
export function parseViTConfig(raw: unknown, source = 'ViT config'): ViTConfig {
  const r = ViTConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${source}: invalid ViT config:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

export interface ViTOutput {
  /** [batch, 1 + numPatches, hidden], after the final LayerNorm (1 + kept patches in training with patch dropout). */
  lastHiddenState: tf.Tensor3D;
  /** [batch, hidden] = tanh(dense(CLS)); present when the model has a pooler. */
  poolerOutput?: tf.Tensor2D;
}

interface ViTLayer {
  layernorm_before: Norm;
  query: Dense;
  key: Dense;
  value: Dense;
  attention_output: Dense;
  layernorm_after: Norm;
  intermediate: Dense;
  output: Dense;
}

/** Every weight a ViTLayer reads (the inputs of its checkpointed gradient). */
function layerWeights(l: ViTLayer): tf.Tensor[] {
  const dense = [l.query, l.key, l.value, l.attention_output, l.intermediate, l.output].flatMap((d) => (d.bias ? [d.kernel, d.bias] : [d.kernel]));
  return [l.layernorm_before.gamma, l.layernorm_before.beta, l.layernorm_after.gamma, l.layernorm_after.beta, ...dense];
}

export class ViTModel extends HfTower implements ImageEncoder {
  readonly config: ViTConfig;
  readonly hiddenSize: number;
  readonly hasPooler: boolean;
  private readonly dropout: SeededDropout;
  private readonly patchDrop: PatchDropout;
  private readonly imageHW: [number, number];
  private readonly patchHW: [number, number];
  private readonly numPatches: number;
  private readonly clsToken: tf.Variable;
  private readonly positionEmbeddings: tf.Variable;
  private readonly projection: Dense;
  private readonly layers: ViTLayer[] = [];
  private readonly layernorm: Norm;
  private readonly pooler?: Dense;
  /** Recompute each encoder layer in the backward pass (TowerOptions.gradientCheckpointing); training only. */
  gradientCheckpointing: boolean;

  /** Build from a config with fresh weights initialised as HF's ViTPreTrainedModel does (seeded). */
  constructor(config: EncoderConfig | ViTConfig, options: TowerOptions = {}) {
    const c = parseViTConfig(config);
    const rng = new Rng(options.seed ?? 0);
    // HF _init_weights: trunc_normal(std) for Linear/Conv2d weights and the cls/position embeddings,
    // zero biases, LayerNorm ones/zeros.
    const random = options.initialize ?? true;
    super('vit', c.num_hidden_layers, (n) => (random ? truncNormalInit(rng, n, c.initializer_range) : null));
    this.config = c;
    this.gradientCheckpointing = options.gradientCheckpointing ?? false;
    this.hiddenSize = c.hidden_size;
    this.hasPooler = c.add_pooling_layer ?? c.feature === 'pooler';
    this.imageHW = pair(c.image_size);
    this.patchHW = pair(c.patch_size);
    this.numPatches = (this.imageHW[0] / this.patchHW[0]) * (this.imageHW[1] / this.patchHW[1]);
    // One generator for both kinds of dropout: the checkpointed RNG states stay one per tower.
    const dropRng = rng.fork(1);
    this.dropout = new SeededDropout(dropRng);
    this.patchDrop = new PatchDropout(dropRng, c.patch_dropout ?? 0);
    const D = c.hidden_size;
    const norm = (name: string, group: WeightGroup): Norm => this.norm(name, D, group);

    this.clsToken = this.param('embeddings.cls_token', [1, 1, D], 'plain', 'embeddings', 'random');
    this.positionEmbeddings = this.param('embeddings.position_embeddings', [1, this.numPatches + 1, D], 'plain', 'embeddings', 'random');
    const [ph, pw] = this.patchHW;
    this.projection = {
      kernel: this.param('embeddings.patch_embeddings.projection.weight', [D, c.num_channels, ph, pw], 'patch', 'embeddings', 'random') as tf.Tensor as tf.Tensor2D,
      bias: this.param('embeddings.patch_embeddings.projection.bias', [D], 'plain', 'embeddings', 'zeros') as tf.Tensor as tf.Tensor1D,
    };
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `encoder.layer.${i}.`;
      this.layers.push({
        layernorm_before: norm(`${p}layernorm_before`, i),
        query: this.dense(`${p}attention.attention.query`, D, D, i, c.qkv_bias),
        key: this.dense(`${p}attention.attention.key`, D, D, i, c.qkv_bias),
        value: this.dense(`${p}attention.attention.value`, D, D, i, c.qkv_bias),
        attention_output: this.dense(`${p}attention.output.dense`, D, D, i),
        layernorm_after: norm(`${p}layernorm_after`, i),
        intermediate: this.dense(`${p}intermediate.dense`, c.intermediate_size, D, i),
        output: this.dense(`${p}output.dense`, D, c.intermediate_size, i),
      });
    }
    this.layernorm = norm('layernorm', 'head');
    if (this.hasPooler) this.pooler = this.dense('pooler.dense', D, D, 'head');
  }

  /** Fraction of patch tokens dropped in training (FLIP), in [0, 1); config `patch_dropout`, default 0. */
  get patchDropout(): number {
    return this.patchDrop.prob;
  }

  set patchDropout(prob: number) {
    this.patchDrop.prob = prob;
  }

  /**
   * Run the tower on pixel_values [batch, channels, height, width] (NCHW float32, as HF). The caller
   * owns the returned tensors; `pixels` is not disposed.
   */
  forward(pixels: ImageInput, options: EncodeOptions = {}): ViTOutput {
    return this.run(pixels, options.training ?? false, this.hasPooler);
  }

  /** [batch, hidden]: CLS of the last hidden state, or the pooler output (config `feature`). Caller owns it. */
  encode(pixels: ImageInput, options: EncodeOptions = {}): tf.Tensor2D {
    const usePooler = this.config.feature === 'pooler';
    return tf.tidy(() => {
      const out = this.run(pixels, options.training ?? false, usePooler);
      return usePooler ? (out.poolerOutput as tf.Tensor2D) : firstToken(out.lastHiddenState);
    });
  }

  private checkInput(pixels: ImageInput): void {
    const [ih, iw] = this.imageHW;
    const C = this.config.num_channels;
    const s = pixels.shape as number[];
    if (s.length !== 4) {
      throw new ShapeError(`ViT: pixel_values must be [batch, ${C}, ${ih}, ${iw}] (NCHW), got a rank-${s.length} tensor [${s.join(', ')}]`);
    }
    if (s[1] !== C) {
      throw new ShapeError(`ViT: pixel_values has ${s[1]} channels (shape [${s.join(', ')}]); the model expects num_channels ${C} (NCHW)`);
    }
    if (s[2] !== ih || s[3] !== iw) {
      throw new ShapeError(`ViT: input image size ${s[2]}x${s[3]} (shape [${s.join(', ')}]) doesn't match the model's image_size ${ih}x${iw}`);
    }
  }

  private run(pixels: ImageInput, training: boolean, withPooler: boolean): ViTOutput {
    this.checkInput(pixels);
    const c = this.config;
    const D = c.hidden_size;
    const eps = c.layer_norm_eps;
    const drop = (x: tf.Tensor, r: number): tf.Tensor => this.dropout.apply(x, r, training);
    return tf.tidy(() => {
      const B = pixels.shape[0];
      const C = c.num_channels;
      const [ph, pw] = this.patchHW;
      const gh = this.imageHW[0] / ph;
      const gw = this.imageHW[1] / pw;
      // ViTPatchEmbeddings: Conv2d(k = stride = patch) is a dense layer on non-overlapping patches, each
      // flattened (c, kh, kw) like the conv weight; patches in row-major (gh, gw) order like flatten(2).
      const x = pixels.dtype === 'float32' ? pixels : tf.cast(pixels, 'float32');
      const patches = tf.reshape(
        tf.transpose(tf.reshape(x, [B, C, gh, ph, gw, pw]), [0, 2, 4, 1, 3, 5]),
        [B * gh * gw, C * ph * pw],
      );
      const embedded = tf.reshape(linear(patches, this.projection.kernel, this.projection.bias), [B, gh * gw, D]);
      // ViTEmbeddings: prepend [CLS], then add position embeddings (which include the CLS slot).
      const cls = tf.tile(this.clsToken, [B, 1, 1]);
      let h: tf.Tensor = this.patchDrop.apply(tf.add(tf.concat([cls, embedded], 1), this.positionEmbeddings) as tf.Tensor3D, training);
      h = drop(h, c.hidden_dropout_prob);
      for (const l of this.layers) {
        h = this.gradientCheckpointing && training
          ? checkpointBlock((x) => this.layer(l, x, drop), h, layerWeights(l), [], this.dropout.generator)
          : this.layer(l, h, drop);
      }
      const lastHiddenState = layerNorm(h, this.layernorm.gamma, this.layernorm.beta, eps) as tf.Tensor3D;
      if (!withPooler || !this.pooler) return { lastHiddenState };
      // ViTPooler: tanh(dense(first token)).
      const poolerOutput = tf.tanh(linear(firstToken(lastHiddenState), this.pooler.kernel, this.pooler.bias)) as tf.Tensor2D;
      return { lastHiddenState, poolerOutput };
    });
  }

  /** One ViTLayer (pre-LN): h + attention(layernorm_before(h)); then h + mlp(layernorm_after(h)). Caller owns the result. */
  private layer(l: ViTLayer, h: tf.Tensor, drop: (x: tf.Tensor, r: number) => tf.Tensor): tf.Tensor {
    const c = this.config;
    const eps = c.layer_norm_eps;
    return tf.tidy(() => {
      const t = layerNorm(h, l.layernorm_before.gamma, l.layernorm_before.beta, eps);
      const q = linear(t, l.query.kernel, l.query.bias) as tf.Tensor3D;
      const k = linear(t, l.key.kernel, l.key.bias) as tf.Tensor3D;
      const v = linear(t, l.value.kernel, l.value.bias) as tf.Tensor3D;
      const ctx = multiHeadAttention(q, k, v, c.num_attention_heads, {
        dropout: (p) => drop(p, c.attention_probs_dropout_prob),
      });
      const attn = drop(linear(ctx, l.attention_output.kernel, l.attention_output.bias), c.hidden_dropout_prob);
      const mid = tf.add(attn, h);
      const u = layerNorm(mid, l.layernorm_after.gamma, l.layernorm_after.beta, eps);
      const inter = activation(c.hidden_act, linear(u, l.intermediate.kernel, l.intermediate.bias));
      return tf.add(drop(linear(inter, l.output.kernel, l.output.bias), c.hidden_dropout_prob), mid);
    });
  }

  /** Trainable weights the forward pass uses (the pooler only counts when `feature` is 'pooler'). */
  override trainableVariables(): tf.Variable[] {
    const poolerUnused = this.config.feature !== 'pooler';
    return this.weights.trainable((name) => poolerUnused && name.startsWith('pooler.'));
  }

  getConfig(): EncoderConfig {
    return { ...this.config, add_pooling_layer: this.hasPooler };
  }
}

registerImageEncoder('vit', (config, options) => new ViTModel(config, options));
