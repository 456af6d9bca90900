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
  type ImageInput,
} from '@clip-ts/core';
import { CLIPTower, clipEncoderKeys, headsDivideHidden, runCLIPEncoder, type CLIPEncoderLayer } from './clip-encoder-layers.js';
import { firstToken, SeededDropout, type TowerOptions } from './layers.js';
import { PatchDropout } from './patch-dropout.js';
import type { Dense, Norm } from './tower.js';

/**
 * CLIP vision tower with the semantics and weight names of HF transformers' `CLIPVisionTransformer`
 * (modeling_clip.py, the `vision_model.*` of CLIPModel): bias-free patch conv → class embedding prepended
 * → position embeddings → `pre_layrnorm` (HF's spelling) → pre-LN encoder → `post_layernorm` on the class
 * token = the pooled feature that CLIPModel projects.
 */

const positiveInt = z.number().int().positive();

/** HF CLIPVisionConfig keys (defaults = HF's, i.e. ViT-B/32). Extra keys (projection_dim, …) are kept. */
export const CLIPVisionConfigSchema = z
  .looseObject({
    model_type: z.literal('clip_vision_model'),
    hidden_size: positiveInt.default(768),
    num_attention_heads: positiveInt.default(12),
    num_channels: positiveInt.default(3),
    image_size: positiveInt.default(224),
    patch_size: positiveInt.default(32),
    intermediate_size: positiveInt.default(3072),
    /** Training only: fraction of patch tokens dropped (FLIP; open_clip's vision_cfg name). Not an HF key. */
    patch_dropout: z.number().min(0).lt(1).optional(),
    ...clipEncoderKeys,
  })
  .superRefine((c, ctx) => {
    headsDivideHidden(c, ctx);
    if (c.image_size % c.patch_size !== 0) {
      ctx.addIssue({ code: 'custom', path: ['image_size'], message: `image_size ${c.image_size} is not divisible by patch_size ${c.patch_size}` });
    }
  });

export type CLIPVisionConfig = z.infer<typeof CLIPVisionConfigSchema>;

/** Validate a CLIP vision config (HF `vision_config` object); `source` names it in the ConfigError. */
export function parseCLIPVisionConfig(raw: unknown, source = 'CLIP vision config'): CLIPVisionConfig {
  const r = CLIPVisionConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${source}: invalid CLIP vision config:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

// A type alias (not an interface) so it is a tf.TensorContainer: tf.tidy and tf.dispose take it.
export type CLIPVisionOutput = {
  /** [batch, 1 + numPatches, hidden]: the encoder output, NOT post-normed (as HF returns it). */
  lastHiddenState: tf.Tensor3D;
  /** [batch, hidden] = post_layernorm(lastHiddenState[:, 0]). */
  poolerOutput: tf.Tensor2D;
};

export class CLIPVisionModel extends CLIPTower implements ImageEncoder {
  readonly config: CLIPVisionConfig;
  readonly hiddenSize: number;
  private readonly dropout: SeededDropout;
  private readonly patchDrop: PatchDropout;
  private readonly grid: number;
  private readonly classEmbedding: tf.Variable;
  private readonly patchEmbedding: Dense;
  private readonly positionEmbedding: tf.Variable;
  private readonly preLayrnorm: Norm;
  private readonly layers: CLIPEncoderLayer[];
  private readonly postLayernorm: Norm;

  /** Build from a config with fresh weights initialised as HF's CLIPPreTrainedModel does (seeded). */
  constructor(config: EncoderConfig | CLIPVisionConfig, options: TowerOptions = {}) {
    const c = parseCLIPVisionConfig(config);
    const rng = new Rng(options.seed ?? 0);
    super('clip_vision', c.num_hidden_layers, (options.initialize ?? true) ? rng : null);
    this.config = c;
    this.hiddenSize = c.hidden_size;
    // One generator for both kinds of dropout: the checkpointed RNG states stay one per tower.
    const dropRng = rng.fork(1);
    this.dropout = new SeededDropout(dropRng);
    this.patchDrop = new PatchDropout(dropRng, c.patch_dropout ?? 0);
    this.grid = c.image_size / c.patch_size;
    const D = c.hidden_size;
    const P = c.patch_size;
    const std = c.initializer_range * c.initializer_factor;
    this.classEmbedding = this.param('embeddings.class_embedding', [D], 'plain', 'embeddings', this.normal(D, D ** -0.5 * c.initializer_factor));
    this.patchEmbedding = {
      kernel: this.param('embeddings.patch_embedding.weight', [D, c.num_channels, P, P], 'patch', 'embeddings', this.normal(D * c.num_channels * P * P, std)) as tf.Tensor as tf.Tensor2D,
    };
    const positions = this.grid * this.grid + 1;
    this.positionEmbedding = this.param('embeddings.position_embedding.weight', [positions, D], 'plain', 'embeddings', this.normal(positions * D, std));
    this.preLayrnorm = this.norm('pre_layrnorm', D, 'embeddings');
    this.layers = this.buildEncoder(c);
    this.postLayernorm = this.norm('post_layernorm', D, 'head');
  }

  /** Fraction of patch tokens dropped in training (FLIP), in [0, 1); config `patch_dropout`, default 0. */
  get patchDropout(): number {
    return this.patchDrop.prob;
  }

  set patchDropout(prob: number) {
    this.patchDrop.prob = prob;
  }

  /**
   * Run the tower on pixel_values [batch, channels, image_size, image_size] (NCHW float32, as HF). The
   * caller owns both returned tensors; `pixels` is not disposed.
   */
  forward(pixels: ImageInput, options: EncodeOptions = {}): CLIPVisionOutput {
    this.checkInput(pixels);
    return tf.tidy(() => {
      const lastHiddenState = this.run(pixels, options.training ?? false);
      return { lastHiddenState, poolerOutput: this.pool(lastHiddenState) };
    });
  }

  /** [batch, hidden]: the pooler output (what CLIPModel's visual_projection takes). Caller owns it. */
  encode(pixels: ImageInput, options: EncodeOptions = {}): tf.Tensor2D {
    this.checkInput(pixels);
    return tf.tidy(() => this.pool(this.run(pixels, options.training ?? false)));
  }

  private pool(lastHiddenState: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(
      () => layerNorm(firstToken(lastHiddenState), this.postLayernorm.gamma, this.postLayernorm.beta, this.config.layer_norm_eps) as tf.Tensor2D,
    );
  }

  private checkInput(pixels: ImageInput): void {
    const { num_channels: C, image_size: S } = this.config;
    const s = pixels.shape as number[];
    if (s.length !== 4 || s[1] !== C || s[2] !== S || s[3] !== S) {
      throw new ShapeError(`CLIP vision: pixel_values must be [batch, ${C}, ${S}, ${S}] (NCHW, image_size ${S}), got [${s.join(', ')}]`);
    }
  }

  /**
   * CLIPVisionEmbeddings: [batch, 1 + numPatches, hidden] = cat(class_embedding, patch conv) + position
   * embeddings, the input of pre_layrnorm. Caller owns the result; `pixels` is not disposed.
   */
  embeddings(pixels: ImageInput): tf.Tensor3D {
    this.checkInput(pixels);
    const c = this.config;
    const D = c.hidden_size;
    const P = c.patch_size;
    const g = this.grid;
    return tf.tidy(() => {
      const B = pixels.shape[0];
      // Conv2d(kernel = stride = patch, bias=False) is a dense layer on non-overlapping patches, each
      // flattened (c, kh, kw) like the conv weight, in row-major (gh, gw) order like flatten(2).
      const x = pixels.dtype === 'float32' ? pixels : tf.cast(pixels, 'float32');
      const patches = tf.reshape(
        tf.transpose(tf.reshape(x, [B, c.num_channels, g, P, g, P]), [0, 2, 4, 1, 3, 5]),
        [B * g * g, c.num_channels * P * P],
      );
      const embedded = tf.reshape(linear(patches, this.patchEmbedding.kernel), [B, g * g, D]);
      const cls = tf.tile(tf.reshape(this.classEmbedding, [1, 1, D]), [B, 1, 1]);
      return tf.add(tf.concat([cls, embedded], 1), this.positionEmbedding) as tf.Tensor3D;
    });
  }

  private run(pixels: ImageInput, training: boolean): tf.Tensor3D {
    const c = this.config;
    return tf.tidy(() => {
      // open_clip: patch dropout after the position embeddings, before ln_pre.
      const h = this.patchDrop.apply(this.embeddings(pixels), training);
      const normed = layerNorm(h, this.preLayrnorm.gamma, this.preLayrnorm.beta, c.layer_norm_eps) as tf.Tensor3D;
      return runCLIPEncoder(normed, this.layers, c, undefined, (p) => this.dropout.apply(p, c.attention_dropout, training));
    });
  }

  getConfig(): EncoderConfig {
    return { ...this.config };
  }
}

registerImageEncoder('clip_vision_model', (config, options) => new CLIPVisionModel(config, options));
