import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import {
  ConfigError,
  formatZodIssues,
  layerNorm,
  linear,
  registerTextEncoder,
  Rng,
  ShapeError,
  SIZE_BOUNDS,
  ValueError,
  type EncodeOptions,
  type EncoderConfig,
  type TextEncoder,
  type TextInput,
} from '@clip-ts/core';
import { keyPaddingBias, multiHeadAttention } from './attention.js';
import { checkpointBlock } from './checkpoint.js';
import { normalInit } from './init.js';
import { activation, firstToken, SeededDropout, type TowerOptions } from './layers.js';
import { HfTower, type Dense, type Norm } from './tower.js';

/**
 * DistilBERT text tower with the semantics and weight names of HF transformers' `DistilBertModel`
 * (modeling_distilbert.py): word + position embeddings → LayerNorm → post-LN transformer blocks.
 */

/** HF hard-codes this eps for every DistilBERT LayerNorm (it is not a config key). */
const LAYER_NORM_EPS = 1e-12;

const positiveInt = z.number().int().positive();
const rate = z.number().min(0).max(1);

/** HF DistilBertConfig keys (defaults = HF's), plus clip-ts' `feature`. Extra keys are kept. */
export const DistilBertConfigSchema = z
  .looseObject({
    model_type: z.literal('distilbert'),
    // Bounded so a hostile config.json cannot ask for a huge allocation (see size-guard in core).
    vocab_size: positiveInt.max(SIZE_BOUNDS.vocab).default(30522),
    max_position_embeddings: positiveInt.max(SIZE_BOUNDS.positions).default(512),
    sinusoidal_pos_embds: z.literal(false, { message: 'sinusoidal_pos_embds: true is not supported' }).default(false),
    n_layers: z.number().int().min(0).max(SIZE_BOUNDS.layers).default(6),
    n_heads: positiveInt.max(SIZE_BOUNDS.width).default(12),
    dim: positiveInt.max(SIZE_BOUNDS.width).default(768),
    hidden_dim: positiveInt.max(SIZE_BOUNDS.width).default(3072),
    dropout: rate.default(0.1),
    attention_dropout: rate.default(0.1),
    activation: z.enum(['gelu', 'relu']).default('gelu'),
    initializer_range: z.number().positive().default(0.02),
    pad_token_id: z.number().int().min(0).default(0),
    /** What `encode` returns: the [CLS] token (the reference) or the mean over real tokens. */
    feature: z.enum(['cls', 'mean']).default('cls'),
  })
  .superRefine((c, ctx) => {
    if (c.dim % c.n_heads !== 0) {
      ctx.addIssue({ code: 'custom', path: ['dim'], message: `dim ${c.dim} is not a multiple of n_heads ${c.n_heads}` });
    }
    if (c.pad_token_id >= c.vocab_size) {
      ctx.addIssue({ code: 'custom', path: ['pad_token_id'], message: `pad_token_id ${c.pad_token_id} ≥ vocab_size ${c.vocab_size}` });
    }
  });

export type DistilBertConfig = z.infer<typeof DistilBertConfigSchema>;

/** Validate a DistilBERT config (an HF config.json object); `source` names it in the ConfigError. */
export function parseDistilBertConfig(raw: unknown, source = 'DistilBERT config'): DistilBertConfig {
  const r = DistilBertConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${source}: invalid DistilBERT config:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

export interface DistilBertOutput {
  /** [batch, seq, dim]; padded positions included (as HF returns them). */
  lastHiddenState: tf.Tensor3D;
}

interface TransformerBlock {
  q_lin: Dense;
  k_lin: Dense;
  v_lin: Dense;
  out_lin: Dense;
  sa_layer_norm: Norm;
  lin1: Dense;
  lin2: Dense;
  output_layer_norm: Norm;
}

/** Every weight a TransformerBlock reads (the inputs of its checkpointed gradient). */
function blockWeights(l: TransformerBlock): tf.Tensor[] {
  const dense = [l.q_lin, l.k_lin, l.v_lin, l.out_lin, l.lin1, l.lin2].flatMap((d) => (d.bias ? [d.kernel, d.bias] : [d.kernel]));
  return [l.sa_layer_norm.gamma, l.sa_layer_norm.beta, l.output_layer_norm.gamma, l.output_layer_norm.beta, ...dense];
}

export class DistilBertModel extends HfTower implements TextEncoder {
  readonly config: DistilBertConfig;
  readonly hiddenSize: number;
  private readonly dropout: SeededDropout;
  private readonly wordEmbeddings: tf.Tensor2D;
  private readonly positionEmbeddings: tf.Tensor2D;
  private readonly embeddingsNorm: Norm;
  private readonly layers: TransformerBlock[] = [];
  /** Recompute each transformer block in the backward pass (TowerOptions.gradientCheckpointing); training only. */
  gradientCheckpointing: boolean;

  /** Build from a config with fresh weights initialised as HF's DistilBertPreTrainedModel does (seeded). */
  constructor(config: EncoderConfig | DistilBertConfig, options: TowerOptions = {}) {
    const c = parseDistilBertConfig(config);
    const rng = new Rng(options.seed ?? 0);
    // HF _init_weights: normal(std) (not truncated) for Linear and Embedding weights, the padding row of
    // the word embeddings zeroed, zero biases, LayerNorm ones/zeros.
    const random = options.initialize ?? true;
    super('distilbert', c.n_layers, (n) => (random ? normalInit(rng, n, c.initializer_range) : null));
    this.config = c;
    this.gradientCheckpointing = options.gradientCheckpointing ?? false;
    this.hiddenSize = c.dim;
    this.dropout = new SeededDropout(rng.fork(1));
    const D = c.dim;
    const words = this.initValues(c.vocab_size * D, 'random');
    words.fill(0, c.pad_token_id * D, (c.pad_token_id + 1) * D);
    this.wordEmbeddings = this.param('embeddings.word_embeddings.weight', [c.vocab_size, D], 'plain', 'embeddings', words) as tf.Tensor as tf.Tensor2D;
    this.positionEmbeddings = this.param('embeddings.position_embeddings.weight', [c.max_position_embeddings, D], 'plain', 'embeddings', 'random') as tf.Tensor as tf.Tensor2D;
    this.embeddingsNorm = this.norm('embeddings.LayerNorm', D, 'embeddings');
    for (let i = 0; i < c.n_layers; i++) {
      const p = `transformer.layer.${i}.`;
      this.layers.push({
        q_lin: this.dense(`${p}attention.q_lin`, D, D, i),
        k_lin: this.dense(`${p}attention.k_lin`, D, D, i),
        v_lin: this.dense(`${p}attention.v_lin`, D, D, i),
        out_lin: this.dense(`${p}attention.out_lin`, D, D, i),
        sa_layer_norm: this.norm(`${p}sa_layer_norm`, D, i),
        lin1: this.dense(`${p}ffn.lin1`, c.hidden_dim, D, i),
        lin2: this.dense(`${p}ffn.lin2`, D, c.hidden_dim, i),
        output_layer_norm: this.norm(`${p}output_layer_norm`, D, i),
      });
    }
  }

  /** Run the tower; the caller owns the result, the inputs are not disposed. */
  forward(text: TextInput, options: EncodeOptions = {}): DistilBertOutput {
    this.checkInput(text);
    return { lastHiddenState: this.run(text, options.training ?? false) };
  }

  /** [batch, dim]: the [CLS] token, or the mean over real tokens (config `feature`). Caller owns it. */
  encode(text: TextInput, options: EncodeOptions = {}): tf.Tensor2D {
    this.checkInput(text);
    return tf.tidy(() => {
      const h = this.run(text, options.training ?? false);
      if (this.config.feature === 'cls') return firstToken(h);
      const mask = tf.expandDims(tf.cast(text.attentionMask, 'float32'), 2); // [b, s, 1]
      const sum = tf.sum(tf.mul(h, mask), 1);
      return tf.div(sum, tf.maximum(tf.sum(mask, 1), 1e-9)) as tf.Tensor2D;
    });
  }

  private checkInput({ inputIds, attentionMask }: TextInput): void {
    const s = inputIds.shape as number[];
    if (s.length !== 2) throw new ShapeError(`DistilBERT: input_ids must be [batch, seq], got shape [${s.join(', ')}]`);
    const m = attentionMask.shape as number[];
    if (m.length !== 2 || m[0] !== s[0] || m[1] !== s[1]) {
      throw new ShapeError(`DistilBERT: attention_mask shape [${m.join(', ')}] differs from input_ids shape [${s.join(', ')}]`);
    }
    const seq = s[1] as number;
    if (seq > this.config.max_position_embeddings) {
      throw new ShapeError(
        `DistilBERT: sequence length ${seq} exceeds max_position_embeddings ${this.config.max_position_embeddings}`,
      );
    }
    if (inputIds.size === 0) return;
    // One small read-back: an out-of-range id would otherwise silently gather garbage/zeros.
    const range = tf.tidy(() => tf.stack([tf.min(inputIds), tf.max(inputIds)]));
    const [lo, hi] = range.dataSync();
    range.dispose();
    if ((lo as number) < 0 || (hi as number) >= this.config.vocab_size) {
      const bad = (lo as number) < 0 ? lo : hi;
      throw new ValueError(`DistilBERT: token id ${bad} in input_ids is outside the vocabulary [0, ${this.config.vocab_size})`);
    }
  }

  private run({ inputIds, attentionMask }: TextInput, training: boolean): tf.Tensor3D {
    const c = this.config;
    const drop = (x: tf.Tensor, r: number): tf.Tensor => this.dropout.apply(x, r, training);
    return tf.tidy(() => {
      const [, seq] = inputIds.shape;
      const ids = inputIds.dtype === 'int32' ? inputIds : tf.cast(inputIds, 'int32');
      // Embeddings: word + position (positions 0..seq-1), LayerNorm, dropout.
      const words = tf.gather(this.wordEmbeddings, ids); // [b, s, d]
      const positions = tf.slice(this.positionEmbeddings, [0, 0], [seq, c.dim]);
      let h = layerNorm(tf.add(words, positions), this.embeddingsNorm.gamma, this.embeddingsNorm.beta, LAYER_NORM_EPS);
      h = drop(h, c.dropout);
      const bias = keyPaddingBias(attentionMask);
      for (const l of this.layers) {
        h = this.gradientCheckpointing && training
          ? checkpointBlock((x, [b]) => this.block(l, x, b as tf.Tensor, drop), h, blockWeights(l), [bias], this.dropout.generator)
          : this.block(l, h, bias, drop);
      }
      return h as tf.Tensor3D;
    });
  }

  /**
   * One TransformerBlock (post-LN): sa = sa_layer_norm(attention(x) + x); out = output_layer_norm(ffn(sa) + sa).
   * `bias` is the additive key-padding mask. Caller owns the result.
   */
  private block(l: TransformerBlock, h: tf.Tensor, bias: tf.Tensor, drop: (x: tf.Tensor, r: number) => tf.Tensor): tf.Tensor {
    const c = this.config;
    return tf.tidy(() => {
      const q = linear(h, l.q_lin.kernel, l.q_lin.bias) as tf.Tensor3D;
      const k = linear(h, l.k_lin.kernel, l.k_lin.bias) as tf.Tensor3D;
      const v = linear(h, l.v_lin.kernel, l.v_lin.bias) as tf.Tensor3D;
      const ctx = multiHeadAttention(q, k, v, c.n_heads, { bias, dropout: (p) => drop(p, c.attention_dropout) });
      const sa = layerNorm(
        tf.add(linear(ctx, l.out_lin.kernel, l.out_lin.bias), h),
        l.sa_layer_norm.gamma,
        l.sa_layer_norm.beta,
        LAYER_NORM_EPS,
      );
      const ffn = drop(linear(activation(c.activation, linear(sa, l.lin1.kernel, l.lin1.bias)), l.lin2.kernel, l.lin2.bias), c.dropout);
      return layerNorm(tf.add(ffn, sa), l.output_layer_norm.gamma, l.output_layer_norm.beta, LAYER_NORM_EPS);
    });
  }

  getConfig(): EncoderConfig {
    return { ...this.config };
  }
}

registerTextEncoder('distilbert', (config, options) => new DistilBertModel(config, options));
