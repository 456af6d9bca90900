import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import {
  ConfigError,
  formatZodIssues,
  registerImageEncoder,
  Rng,
  ShapeError,
  SIZE_BOUNDS,
  type EncodeOptions,
  type EncoderConfig,
  type ImageEncoder,
  type ImageInput,
} from '@clip-ts/core';
import { normalInit } from './init.js';
import { ACTIVATIONS, activation, type ActivationName, type TowerOptions } from './layers.js';
import { HfTower } from './tower.js';
import type { WeightGroup } from './weights.js';

/**
 * ResNet image tower with the semantics and weight names of HF transformers' `ResNetModel`
 * (modeling_resnet.py, e.g. microsoft/resnet-50): stem (conv 7×7/2 + BatchNorm + act + max-pool 3×3/2) →
 * stages of bottleneck or basic residual layers (1×1 conv + BatchNorm shortcut where the shape changes) →
 * global average pool. Activations run NHWC (tfjs' conv layout); the API speaks NCHW like HF.
 */

const positiveInt = z.number().int().positive();
const width = positiveInt.max(SIZE_BOUNDS.width);

/** HF ResNetConfig keys (defaults = HF's = microsoft/resnet-50). Extra keys (id2label, out_features, …) are kept. */
export const ResNetConfigSchema = z
  .looseObject({
    model_type: z.literal('resnet'),
    num_channels: positiveInt.max(SIZE_BOUNDS.channels).default(3),
    embedding_size: width.default(64),
    hidden_sizes: z.array(width).min(1).max(SIZE_BOUNDS.layers).default([256, 512, 1024, 2048]),
    depths: z.array(positiveInt.max(SIZE_BOUNDS.layers)).min(1).max(SIZE_BOUNDS.layers).default([3, 4, 6, 3]),
    layer_type: z.enum(['basic', 'bottleneck']).default('bottleneck'),
    hidden_act: z.enum(ACTIVATIONS).default('relu'),
    downsample_in_first_stage: z.boolean().default(false),
    /** Newer HF versions: stride the first 1×1 conv of a bottleneck instead of its 3×3 conv. */
    downsample_in_bottleneck: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    if (c.hidden_sizes.length !== c.depths.length) {
      ctx.addIssue({ code: 'custom', path: ['depths'], message: `has ${c.depths.length} stage(s) but hidden_sizes has ${c.hidden_sizes.length}` });
    }
    if (c.depths.reduce((a, b) => a + b, 0) > SIZE_BOUNDS.layers) {
      ctx.addIssue({ code: 'custom', path: ['depths'], message: `more than ${SIZE_BOUNDS.layers} layers in all` });
    }
    if (c.layer_type === 'bottleneck') {
      c.hidden_sizes.forEach((h, i) => {
        if (h < BOTTLENECK_REDUCTION) ctx.addIssue({ code: 'custom', path: ['hidden_sizes', i], message: `${h} is below ${BOTTLENECK_REDUCTION}: a bottleneck layer reduces it by ${BOTTLENECK_REDUCTION}` });
      });
    }
  });

export type ResNetConfig = z.infer<typeof ResNetConfigSchema>;

/** HF ResNetBottleNeckLayer's `reduction`: the inner convs have out_channels / 4 channels. */
const BOTTLENECK_REDUCTION = 4;
/** nn.BatchNorm2d defaults, which HF keeps. */
const BN_EPS = 1e-5;
const BN_MOMENTUM = 0.1;

/** Validate a ResNet config (an HF config.json object); `source` names it in the ConfigError. */
export function parseResNetConfig(raw: unknown, source = 'ResNet config'): ResNetConfig {
  const r = ResNetConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${source}: invalid ResNet config:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}

export interface ResNetOutput {
  /** [batch, hidden_sizes[-1], h, w] (NCHW, as HF), after the last stage. */
  lastHiddenState: tf.Tensor4D;
  /** [batch, hidden_sizes[-1]]: the global average pool (HF's is [batch, C, 1, 1]). */
  poolerOutput: tf.Tensor2D;
}

/** nn.BatchNorm2d: affine weights (trained) and running statistics (buffers the forward pass updates). */
interface BatchNorm {
  weight: tf.Variable;
  bias: tf.Variable;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
  numBatchesTracked: tf.Variable;
}

/** HF ResNetConvLayer / ResNetShortCut: Conv2d (no bias, padding kernel // 2) + BatchNorm + optional act. */
interface ConvBn {
  filter: tf.Tensor4D;
  kernel: number;
  stride: number;
  bn: BatchNorm;
  act: ActivationName | null;
}

interface ResidualLayer {
  shortcut?: ConvBn;
  convs: ConvBn[];
}

/**
 * How BatchNorm runs: 'train' normalises with the batch statistics and updates the running ones (PyTorch
 * train mode); 'frozen' trains the weights but normalises with the running statistics and leaves them
 * alone (open_clip's freeze-bn-stats); 'eval' is inference.
 */
type BnMode = 'train' | 'frozen' | 'eval';

export class ResNetModel extends HfTower implements ImageEncoder {
  readonly config: ResNetConfig;
  readonly hiddenSize: number;
  private readonly stem: ConvBn;
  private readonly layers: ResidualLayer[] = [];
  private bnStatsFrozen = false;

  /**
   * Build from a config with fresh weights initialised as HF's ResNetPreTrainedModel does (seeded):
   * kaiming normal (fan_out, relu gain) for convs, BatchNorm weight 1 / bias 0, running stats 0 / 1.
   */
  constructor(config: EncoderConfig | ResNetConfig, options: TowerOptions = {}) {
    const c = parseResNetConfig(config);
    const rng = new Rng(options.seed ?? 0);
    const random = options.initialize ?? true;
    const numLayers = c.depths.reduce((a, b) => a + b, 0);
    // Convs are the only random weights and each draws its own std (below), so there is no shared sampler.
    super('resnet', numLayers, () => null);
    this.config = c;
    this.hiddenSize = c.hidden_sizes[c.hidden_sizes.length - 1] as number;

    const convBn = (name: string, inC: number, outC: number, kernel: number, stride: number, act: ActivationName | null, group: WeightGroup): ConvBn => {
      // kaiming_normal_(mode='fan_out', nonlinearity='relu'): std = √(2 / (out·kh·kw)).
      const size = outC * inC * kernel * kernel;
      const init = random ? normalInit(rng, size, Math.sqrt(2 / (outC * kernel * kernel))) : 'zeros';
      const filter = this.param(`${name}.convolution.weight`, [outC, inC, kernel, kernel], 'conv', group, init) as tf.Tensor as tf.Tensor4D;
      return { filter, kernel, stride, act, bn: this.batchNorm(`${name}.normalization`, outC, group) };
    };

    this.stem = convBn('embedder.embedder', c.num_channels, c.embedding_size, 7, 2, c.hidden_act, 'embeddings');
    let inC = c.embedding_size;
    let index = 0;
    c.hidden_sizes.forEach((outC, s) => {
      // ResNetEncoder: only the first stage may skip downsampling (downsample_in_first_stage).
      const stageStride = s === 0 && !c.downsample_in_first_stage ? 1 : 2;
      for (let j = 0; j < (c.depths[s] as number); j++) {
        const p = `encoder.stages.${s}.layers.${j}`;
        const first = j === 0;
        const stride = first ? stageStride : 1;
        const layerIn = first ? inC : outC;
        const group = index++;
        const layer: ResidualLayer = { convs: [] };
        if (layerIn !== outC || stride !== 1) layer.shortcut = convBn(`${p}.shortcut`, layerIn, outC, 1, stride, null, group);
        // Inside a layer HF's ResNetConvLayers keep their default relu; hidden_act is applied after the add.
        if (c.layer_type === 'basic') {
          layer.convs.push(convBn(`${p}.layer.0`, layerIn, outC, 3, stride, 'relu', group));
          layer.convs.push(convBn(`${p}.layer.1`, outC, outC, 3, 1, null, group));
        } else {
          const r = Math.floor(outC / BOTTLENECK_REDUCTION);
          const inBottleneck = first && c.downsample_in_bottleneck;
          layer.convs.push(convBn(`${p}.layer.0`, layerIn, r, 1, inBottleneck ? stride : 1, 'relu', group));
          layer.convs.push(convBn(`${p}.layer.1`, r, r, 3, inBottleneck ? 1 : stride, 'relu', group));
          layer.convs.push(convBn(`${p}.layer.2`, r, outC, 1, 1, null, group));
        }
        this.layers.push(layer);
      }
      inC = outC;
    });
  }

  /** nn.BatchNorm2d(dim) named `${name}.*`: weight 1, bias 0; buffers running_mean 0, running_var 1, num_batches_tracked 0. */
  private batchNorm(name: string, dim: number, group: WeightGroup): BatchNorm {
    const buffer = (key: string, init: Float32Array | Int32Array, shape: number[]): tf.Variable =>
      this.weights.add(`${name}.${key}`, shape, 'plain', init, { noDecay: true, group, buffer: true });
    return {
      weight: this.param(`${name}.weight`, [dim], 'plain', group, 'ones'),
      bias: this.param(`${name}.bias`, [dim], 'plain', group, 'zeros'),
      runningMean: buffer('running_mean', new Float32Array(dim), [dim]),
      runningVar: buffer('running_var', new Float32Array(dim).fill(1), [dim]),
      numBatchesTracked: buffer('num_batches_tracked', new Int32Array(1), []),
    };
  }

  /**
   * Keep BatchNorm on its running statistics while the weights train (open_clip's
   * `--lock-image-freeze-bn-stats`): training steps neither use batch statistics nor update the buffers.
   */
  freezeBnStats(frozen = true): void {
    this.bnStatsFrozen = frozen;
  }

  get bnStatsAreFrozen(): boolean {
    return this.bnStatsFrozen;
  }

  /**
   * Run the tower on pixel_values [batch, channels, height, width] (NCHW float32, as HF). With
   * `training`, BatchNorm uses batch statistics and updates its running statistics (unless frozen). The
   * caller owns the returned tensors; `pixels` is not disposed.
   */
  forward(pixels: ImageInput, options: EncodeOptions = {}): ResNetOutput {
    return tf.tidy(() => {
      const h = this.run(pixels, this.mode(options));
      return { lastHiddenState: tf.transpose(h, [0, 3, 1, 2]), poolerOutput: tf.mean(h, [1, 2]) as tf.Tensor2D };
    });
  }

  /** [batch, hidden_sizes[-1]]: the pooler output. Caller owns it. */
  encode(pixels: ImageInput, options: EncodeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => tf.mean(this.run(pixels, this.mode(options)), [1, 2]) as tf.Tensor2D);
  }

  private mode(options: EncodeOptions): BnMode {
    if (!(options.training ?? false)) return 'eval';
    return this.bnStatsFrozen ? 'frozen' : 'train';
  }

  private checkInput(pixels: ImageInput): void {
    const C = this.config.num_channels;
    const s = pixels.shape as number[];
    if (s.length !== 4) throw new ShapeError(`ResNet: pixel_values must be [batch, ${C}, height, width] (NCHW), got a rank-${s.length} tensor [${s.join(', ')}]`);
    if (s[1] !== C) throw new ShapeError(`ResNet: pixel_values has ${s[1]} channels (shape [${s.join(', ')}]); the model expects num_channels ${C} (NCHW)`);
  }

  /** The last stage's activations, NHWC (tensor inside the caller's tidy). */
  private run(pixels: ImageInput, mode: BnMode): tf.Tensor4D {
    this.checkInput(pixels);
    const x = pixels.dtype === 'float32' ? pixels : tf.cast(pixels, 'float32');
    // One transpose to tfjs' NHWC; every conv, norm and pool below works channels-last.
    let h = convBn(tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D, this.stem, mode);
    h = tf.maxPool(h, 3, 2, 1);
    for (const layer of this.layers) {
      const residual = layer.shortcut ? convBn(h, layer.shortcut, mode) : h;
      let y = h;
      for (const conv of layer.convs) y = convBn(y, conv, mode);
      h = activation(this.config.hidden_act, tf.add(y, residual)) as tf.Tensor4D;
    }
    return h;
  }

  getConfig(): EncoderConfig {
    return { ...this.config };
  }
}

/** Conv2d(padding = kernel // 2, no bias) → BatchNorm → activation, on NHWC. Caller owns the result. */
function convBn(x: tf.Tensor4D, l: ConvBn, mode: BnMode): tf.Tensor4D {
  return tf.tidy(() => {
    const p = Math.floor(l.kernel / 2);
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
    const y = batchNorm(tf.conv2d(x, l.filter, l.stride, p === 0 ? 'valid' : pad), l.bn, mode);
    return (l.act ? activation(l.act, y) : y) as tf.Tensor4D;
  });
}

/**
 * nn.BatchNorm2d on NHWC. 'train': normalise with the batch mean and biased variance, then set
 * running = (1 − 0.1)·running + 0.1·batch with the UNBIASED variance and count the batch, as PyTorch does.
 * Otherwise: normalise with the running statistics. Caller owns the result.
 */
function batchNorm(x: tf.Tensor4D, bn: BatchNorm, mode: BnMode, eps = BN_EPS): tf.Tensor4D {
  return tf.tidy(() => {
    if (mode !== 'train') {
      const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(bn.runningVar, eps)));
      return tf.add(tf.mul(x, scale), tf.sub(bn.bias, tf.mul(bn.runningMean, scale))) as tf.Tensor4D;
    }
    const [b, h, w] = x.shape;
    const n = b * h * w;
    if (n < 2) throw new ShapeError(`ResNet: BatchNorm in training needs more than 1 value per channel, got input [${x.shape.join(', ')}]`);
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    // The buffers take new values; assign is not recorded on the gradient tape.
    bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
    bn.runningVar.assign(tf.add(tf.mul(bn.runningVar, 1 - BN_MOMENTUM), tf.mul(variance, (BN_MOMENTUM * n) / (n - 1))));
    bn.numBatchesTracked.assign(tf.add(bn.numBatchesTracked, tf.scalar(1, 'int32')));
    const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(tf.sub(x, mean), scale), bn.bias) as tf.Tensor4D;
  });
}

registerImageEncoder('resnet', (config, options) => new ResNetModel(config, options));
