import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import {
  ConfigError,
  formatZodIssues,
  layerNorm,
  registerTextEncoder,
  Rng,
  ShapeError,
  ValueError,
  type EncodeOptions,
  type EncoderConfig,
  type TextEncoder,
  type TextInput,
} from '@clip-ts/core';
import { FLOAT32_MIN } from './attention.js';
import { CLIPTower, clipEncoderKeys, headsDivideHidden, runCLIPEncoder, type CLIPEncoderLayer } from './clip-encoder-layers.js';
import { SeededDropout, type TowerOptions } from './layers.js';
import type { Norm } from './tower.js';

/**
 * CLIP text tower with the semantics and weight names of HF transformers' `CLIPTextTransformer`
 * (modeling_clip.py, the `text_model.*` of CLIPModel): token + position embeddings → pre-LN encoder under
 * a causal mask combined with the padding mask → `final_layer_norm`; the pooled feature (what CLIPModel
 * projects) is the final hidden state at the end-of-text token.
 */

const positiveInt = z.number().int().positive();

/**
 * `eos_token_id` 2 is what configs written before transformers 4.31 carry (a wrong value HF keeps for
 * backward compatibility): for them HF pools at argmax(input_ids), which is the EOS because it has the
 * highest id of CLIP's vocabulary. Any other value pools at the first position holding that id.
 */
export const LEGACY_EOS_TOKEN_ID = 2;

/** HF CLIPTextConfig keys (defaults = HF's). Extra keys (projection_dim, …) are kept. */
export const CLIPTextConfigSchema = z
  .looseObject({
    model_type: z.literal('clip_text_model'),
    vocab_size: positiveInt.default(49408),
    hidden_size: positiveInt.default(512),
    intermediate_size: positiveInt.default(2048),
    num_attention_heads: positiveInt.default(8),
    max_position_embeddings: positiveInt.default(77),
    pad_token_id: z.number().int().min(0).default(1),
    bos_token_id: z.number().int().min(0).default(49406),
    eos_token_id: z.number().int().min(0).default(49407),
    ...clipEncoderKeys,
  })
  .superRefine((c, ctx) => {
    headsDivideHidden(c, ctx);
    if (c.eos_token_id >= c.vocab_size) {
      ctx.addIssue({ code: 'custom', path: ['eos_token_id'], message: `eos_token_id ${c.eos_token_id} ≥ vocab_size ${c.vocab_size}` });
    }
  });

export type CLIPTextConfig = z.infer<typeof CLIPTextConfigSchema>;

/** Validate a CLIP text config (HF `text_config` object); `source` names it in the ConfigError. */
export function parseCLIPTextConfig(raw: unknown, source = 'CLIP text config'): CLIPTextConfig {
  const r = CLIPTextConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${source}: invalid CLIP text config:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

// A type alias (not an interface) so it is a tf.TensorContainer: tf.tidy and tf.dispose take it.
export type CLIPTextOutput = {
  /** [batch, seq, hidden] after final_layer_norm; padded positions included (as HF returns them). */
  lastHiddenState: tf.Tensor3D;
  /** [batch, hidden]: lastHiddenState at the end-of-text token (see eosIndices). */
  poolerOutput: tf.Tensor2D;
};

export class CLIPTextModel extends CLIPTower implements TextEncoder {
  readonly config: CLIPTextConfig;
  readonly hiddenSize: number;
  private readonly dropout: SeededDropout;
  private readonly tokenEmbedding: tf.Tensor2D;
  private readonly positionEmbedding: tf.Tensor2D;
  private readonly layers: CLIPEncoderLayer[];
  private readonly finalLayerNorm: Norm;

  /** Build from a config with fresh weights initialised as HF's CLIPPreTrainedModel does (seeded). */
  constructor(config: EncoderConfig | CLIPTextConfig, options: TowerOptions = {}) {
    const c = parseCLIPTextConfig(config);
    const rng = new Rng(options.seed ?? 0);
    super('clip_text', c.num_hidden_layers, (options.initialize ?? true) ? rng : null);
    this.config = c;
    this.hiddenSize = c.hidden_size;
    this.dropout = new SeededDropout(rng.fork(1));
    const D = c.hidden_size;
    const std = 0.02 * c.initializer_factor; // HF hard-codes 0.02 for both text embeddings
    this.tokenEmbedding = this.param('embeddings.token_embedding.weight', [c.vocab_size, D], 'plain', 'embeddings', this.normal(c.vocab_size * D, std)) as tf.Tensor as tf.Tensor2D;
    const P = c.max_position_embeddings;
    this.positionEmbedding = this.param('embeddings.position_embedding.weight', [P, D], 'plain', 'embeddings', this.normal(P * D, std)) as tf.Tensor as tf.Tensor2D;
    this.layers = this.buildEncoder(c);
    this.finalLayerNorm = this.norm('final_layer_norm', D, 'head');
  }

  /** Run the tower; the caller owns both returned tensors, the inputs are not disposed. */
  forward(text: TextInput, options: EncodeOptions = {}): CLIPTextOutput {
    this.checkInput(text);
    return tf.tidy(() => {
      const lastHiddenState = this.run(text, options.training ?? false);
      return { lastHiddenState, poolerOutput: this.pool(lastHiddenState, text.inputIds) };
    });
  }

  /** [batch, hidden]: the pooler output (what CLIPModel's text_projection takes). Caller owns it. */
  encode(text: TextInput, options: EncodeOptions = {}): tf.Tensor2D {
    this.checkInput(text);
    return tf.tidy(() => this.pool(this.run(text, options.training ?? false), text.inputIds));
  }

  /**
   * int32 [batch]: the position pooled per row, by HF's two rules (see LEGACY_EOS_TOKEN_ID). A row without
   * the EOS id pools position 0, as torch's argmax of an all-zero row does. Caller owns the result.
   */
  eosIndices(inputIds: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const ids = inputIds.dtype === 'int32' ? inputIds : tf.cast(inputIds, 'int32');
      const eos = this.config.eos_token_id;
      // argMax returns the first maximum, so both rules pick the FIRST EOS when padding repeats it.
      return tf.cast(eos === LEGACY_EOS_TOKEN_ID ? tf.argMax(ids, 1) : tf.argMax(tf.cast(tf.equal(ids, eos), 'int32'), 1), 'int32') as tf.Tensor1D;
    });
  }

  private pool(lastHiddenState: tf.Tensor3D, inputIds: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const seq = lastHiddenState.shape[1];
      // A one-hot product rather than gather: gather's gradient (UnsortedSegmentSum) is slow or missing on wasm.
      const pick = tf.expandDims(tf.cast(tf.oneHot(this.eosIndices(inputIds), seq), 'float32'), 2);
      return tf.sum(tf.mul(lastHiddenState, pick), 1) as tf.Tensor2D;
    });
  }

  private checkInput({ inputIds, attentionMask }: TextInput): void {
    const s = inputIds.shape as number[];
    if (s.length !== 2) throw new ShapeError(`CLIP text: input_ids must be [batch, seq], got shape [${s.join(', ')}]`);
    const m = attentionMask.shape as number[];
    if (m.length !== 2 || m[0] !== s[0] || m[1] !== s[1]) {
      throw new ShapeError(`CLIP text: attention_mask shape [${m.join(', ')}] differs from input_ids shape [${s.join(', ')}]`);
    }
    const P = this.config.max_position_embeddings;
    if ((s[1] as number) > P) throw new ShapeError(`CLIP text: sequence length ${s[1]} exceeds max_position_embeddings ${P}`);
    if (inputIds.size === 0) return;
    // One small read-back: an out-of-range id would otherwise silently gather garbage/zeros.
    const range = tf.tidy(() => tf.stack([tf.min(inputIds), tf.max(inputIds)]));
    const [lo, hi] = range.dataSync() as unknown as [number, number];
    range.dispose();
    if (lo < 0 || hi >= this.config.vocab_size) {
      throw new ValueError(`CLIP text: token id ${lo < 0 ? lo : hi} in input_ids is outside the vocabulary [0, ${this.config.vocab_size})`);
    }
  }

  /**
   * Additive score bias [batch, 1, seq, seq]: 0 where query i may see key j (j ≤ i and j is a real token),
   * float32 min elsewhere, like HF's causal mask plus its expanded padding mask.
   */
  private maskBias(attentionMask: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, seq] = attentionMask.shape;
      const causal = tf.linalg.bandPart(tf.ones([seq, seq]), -1, 0); // [i, j] = 1 for j ≤ i
      const keys = tf.reshape(tf.cast(tf.notEqual(attentionMask, 0), 'float32'), [b, 1, 1, seq]);
      return tf.mul(tf.sub(1, tf.mul(causal, keys)), FLOAT32_MIN) as tf.Tensor4D;
    });
  }

  /**
   * CLIPTextEmbeddings: [batch, seq, hidden] = token_embedding[input_ids] + position_embedding[:seq], the
   * encoder's input. Caller owns the result; `inputIds` is not disposed.
   */
  embeddings(text: TextInput): tf.Tensor3D {
    this.checkInput(text);
    return this.embed(text.inputIds);
  }

  private embed(inputIds: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const seq = inputIds.shape[1];
      const ids = inputIds.dtype === 'int32' ? inputIds : tf.cast(inputIds, 'int32');
      const tokens = tf.gather(this.tokenEmbedding, ids); // [b, s, d]
      return tf.add(tokens, tf.slice(this.positionEmbedding, [0, 0], [seq, this.config.hidden_size])) as tf.Tensor3D;
    });
  }

  private run({ inputIds, attentionMask }: TextInput, training: boolean): tf.Tensor3D {
    const c = this.config;
    return tf.tidy(() => {
      const out = runCLIPEncoder(this.embed(inputIds), this.layers, c, this.maskBias(attentionMask), (p) => this.dropout.apply(p, c.attention_dropout, training));
      return layerNorm(out, this.finalLayerNorm.gamma, this.finalLayerNorm.beta, c.layer_norm_eps) as tf.Tensor3D;
    });
  }

  getConfig(): EncoderConfig {
    return { ...this.config };
  }
}

registerTextEncoder('clip_text_model', (config, options) => new CLIPTextModel(config, options));
