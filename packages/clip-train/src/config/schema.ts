import { z } from 'zod';
import { BACKEND_NAMES } from '@clip-ts/core';

/**
 * The experiment config of `clip train` and runExperiment. Strict everywhere: an unknown key is an error
 * (a typo must not silently fall back to a default). docs/config.schema.json is generated from this.
 */

const positiveInt = z.number().int().positive();
const rate = z.number().min(0).lt(1);
const lr = z.number().positive().max(10);

/** One tower: a pretrained HF directory (config.json + weights), or a config to build from scratch. */
const TowerSchema = z.union([
  z.strictObject({
    /** Directory of a Hugging Face checkpoint (config.json + model.safetensors). */
    pretrained: z.string().min(1),
  }),
  z.strictObject({
    /** HF-style config (`model_type` 'vit' / 'distilbert' or any registered type); weights start random. */
    config: z.looseObject({ model_type: z.string().min(1) }),
  }),
]);

/** 'none' trains the tower, 'all' freezes it, a number N trains only its last N transformer blocks. */
const TowerFreezeSchema = z.union([z.enum(['none', 'all']), z.number().int().min(0)]);

export const ModelConfigSchema = z.strictObject({
  vision: TowerSchema,
  text: TowerSchema,
  projectionDim: positiveInt.default(256),
  /** 'linear': Linear + LayerNorm (the reference); 'mlp': the tutorial's two-layer head. */
  head: z.enum(['linear', 'mlp']).default('linear'),
  /** Dropout of the mlp head. */
  dropout: rate.default(0.1),
  /** 'none' (full fine-tuning), 'towers' (only heads + scale train; enables the feature cache), or per tower. */
  freeze: z
    .union([z.enum(['none', 'towers']), z.strictObject({ vision: TowerFreezeSchema.default('none'), text: TowerFreezeSchema.default('none') })])
    .default('none'),
});

const ShapesDataSchema = z.strictObject({
  kind: z.literal('shapes'),
  /** createShapes options (seed, imageSize, trainSize, valSize, testSize, blurry, twoShapes, ...). */
  options: z.record(z.string(), z.unknown()).default({}),
});

const Flickr8kDataSchema = z.strictObject({
  kind: z.literal('flickr8k'),
  root: z.string().min(1),
  /** loadFlickr8k options (captionsFile, imagesDir, splitFiles, randomSplit, onMissing, onBadImage). */
  options: z.record(z.string(), z.unknown()).default({}),
});

const CsvDataSchema = z.strictObject({
  kind: z.literal('csv'),
  /** A captions CSV (image,caption,split) or a directory holding captions.csv. */
  root: z.string().min(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

export const DataConfigSchema = z.strictObject({
  dataset: z.discriminatedUnion('kind', [ShapesDataSchema, Flickr8kDataSchema, CsvDataSchema]),
  /** tokenizer.json, or a directory holding it (with tokenizer_config.json). */
  tokenizer: z.string().min(1),
  /** Captions are tokenised, truncated and padded to this many tokens (reference: 40). */
  // 3: the tokenizer's [CLS] and [SEP] plus at least one caption token (what the tokenizer itself checks).
  maxLength: z.number().int().min(3, 'must be ≥ 3: [CLS] + [SEP] + at least one token').max(512).default(40),
  batchSize: positiveInt.default(32),
  /** Batch size of validation/test passes (in-batch top-k is out of this many). Default: batchSize. */
  evalBatchSize: positiveInt.optional(),
  /** Square image size the processor resizes to (must match the vision tower). */
  imageSize: positiveInt.default(224),
  /** A directory with preprocessor_config.json (mean/std/resample); default: OpenAI CLIP mean/std, bilinear. */
  imageProcessor: z.string().min(1).optional(),
  /** Training caption per image per epoch: 'random' (the reference) or always the 'first'. */
  captionPick: z.enum(['random', 'first']).default('random'),
  /** Use only the first N images of each split (quick runs). */
  limit: z
    .strictObject({ train: positiveInt.optional(), val: positiveInt.optional(), test: positiveInt.optional() })
    .optional(),
  /** Decoded images held in memory across epochs (needs RAM: N·3·H·W·4 bytes). */
  cacheImages: z.boolean().default(false),
});

export const OptimConfigSchema = z
  .strictObject({
    /** adam / adamw (torch.optim.Adam / AdamW) or sgd (torch.optim.SGD; beta1/beta2/eps are then unused). */
    name: z.enum(['adam', 'adamw', 'sgd']).default('adam'),
    /** LR of the heads and the logit scale (and of the towers unless towerLr is set). Reference: 1e-4. */
    lr: lr.default(1e-4),
    towerLr: lr.optional(),
    weightDecay: z.number().min(0).max(1).default(0),
    beta1: rate.default(0.9),
    beta2: rate.default(0.999),
    eps: z.number().positive().default(1e-8),
    /** Clip gradients to this global L2 norm. */
    clipGradNorm: z.number().positive().optional(),
    /** Micro-batches averaged into each optimizer step. */
    accumulation: positiveInt.default(1),
    // SGD only. Optional without defaults so the resolved config of an Adam run (config.json) is unchanged.
    /** SGD momentum factor (0: plain SGD). */
    momentum: rate.optional(),
    /** SGD dampening of the gradient added to the momentum buffer. */
    dampening: rate.optional(),
    /** SGD Nesterov momentum (needs momentum > 0 and dampening 0). */
    nesterov: z.boolean().optional(),
  })
  .refine((o) => o.name === 'sgd' || (o.momentum === undefined && o.dampening === undefined && o.nesterov === undefined), {
    message: 'momentum, dampening and nesterov apply only to optim.name: sgd',
    path: ['name'],
  });

export const ScheduleConfigSchema = z.strictObject({
  epochs: z.number().int().min(1).max(10_000).default(30),
  reduceLROnPlateau: z
    .union([
      z.literal(false),
      z.strictObject({
        factor: z.number().gt(0).lt(1).default(0.5),
        patience: z.number().int().min(0).default(2),
        threshold: z.number().min(0).default(1e-4),
        thresholdMode: z.enum(['rel', 'abs']).default('rel'),
        cooldown: z.number().int().min(0).default(0),
        minLr: z.number().min(0).default(0),
      }),
    ])
    .default({ factor: 0.5, patience: 2, threshold: 1e-4, thresholdMode: 'rel', cooldown: 0, minLr: 0 }),
  earlyStopping: z
    .union([z.literal(false), z.strictObject({ patience: z.number().int().min(1).default(5), minDelta: z.number().min(0).default(0) })])
    .default({ patience: 5, minDelta: 0 }),
});

export const EvalConfigSchema = z.strictObject({
  /** k of the in-batch top-k accuracies (reference: 1 and 5). */
  topK: z.array(positiveInt).min(1).default([1, 5]),
  /** K of full-split Recall@K in both directions. */
  recallK: z.array(positiveInt).min(1).default([1, 5, 10]),
});

export const ExperimentConfigSchema = z.strictObject({
  /** Seeds every random source: weight init, shuffles, caption picks, dropout. */
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(42),
  backend: z.enum(BACKEND_NAMES).default('auto'),
  model: ModelConfigSchema,
  data: DataConfigSchema,
  optim: OptimConfigSchema.default(OptimConfigSchema.parse({})),
  schedule: ScheduleConfigSchema.default(ScheduleConfigSchema.parse({})),
  eval: EvalConfigSchema.default(EvalConfigSchema.parse({})),
  /** Frozen-tower feature cache: 'auto' uses it when both towers are frozen; false never. */
  featureCache: z
    .strictObject({ enabled: z.union([z.literal('auto'), z.literal(false)]).default('auto'), dir: z.string().min(1).optional() })
    .default({ enabled: 'auto' }),
  output: z.strictObject({ runDir: z.string().min(1).default('runs/experiment') }).default({ runDir: 'runs/experiment' }),
});

/** A parsed config: every default filled in. */
export type ExperimentConfig = z.infer<typeof ExperimentConfigSchema>;
/** What a user writes: defaults optional. */
export type ExperimentConfigInput = z.input<typeof ExperimentConfigSchema>;
export type TowerFreeze = z.infer<typeof TowerFreezeSchema>;

/** The JSON Schema committed as docs/config.schema.json (editors validate config files with it). */
export function experimentJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ExperimentConfigSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
