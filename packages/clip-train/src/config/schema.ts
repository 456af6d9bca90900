import { z } from 'zod';
import { BACKEND_NAMES, LOSS_TYPES, MAX_WASM_THREADS, TARGET_MODES } from '@clip-ts/core';
import { AugmentOptionsSchema } from '@clip-ts/data';

/**
 * The experiment config of `clip train` and runExperiment. Strict everywhere: an unknown key is an error
 * (a typo must not silently fall back to a default). docs/config.schema.json is generated from this.
 */

const positiveInt = z.number().int().positive();
const rate = z.number().min(0).lt(1);
const lr = z.number().positive().max(10);

/**
 * Towers with BatchNorm (ResNet): keep normalising with the running statistics and never update them
 * while the weights train (open_clip's --lock-image-freeze-bn-stats). Default false.
 */
const freezeBnStats = z.boolean().optional();

/** One tower: a pretrained HF directory (config.json + weights), or a config to build from scratch. */
const TowerSchema = z.union([
  z.strictObject({
    /** Directory of a Hugging Face checkpoint (config.json + model.safetensors). */
    pretrained: z.string().min(1),
    freezeBnStats,
  }),
  z.strictObject({
    /** HF-style config (`model_type` 'vit' / 'resnet' / 'distilbert' or any registered type); weights start random. */
    config: z.looseObject({ model_type: z.string().min(1) }),
    freezeBnStats,
  }),
]);

/**
 * The vision tower takes one training option on top: FLIP patch dropout (open_clip's PatchDropout), the
 * fraction of patch tokens each training image drops (0.5 in the FLIP paper); all tokens at eval. ViT and
 * CLIP vision towers. Default 0.
 */
const patchDropout = { patchDropout: z.number().min(0).lt(1).optional() };
const VisionTowerSchema = z.union([TowerSchema.options[0].extend(patchDropout), TowerSchema.options[1].extend(patchDropout)]);

/** 'none' trains the tower, 'all' freezes it, a number N trains only its last N transformer blocks. */
const TowerFreezeSchema = z.union([z.enum(['none', 'all']), z.number().int().min(0)]);

const FreezeSchema = z
  .union([z.enum(['none', 'towers']), z.strictObject({ vision: TowerFreezeSchema.default('none'), text: TowerFreezeSchema.default('none') })])
  .default('none');

/** Keys that describe how to build a model from towers, which a whole pretrained CLIP already fixes. */
const TOWER_MODEL_KEYS = ['vision', 'text', 'projectionDim', 'head', 'dropout'] as const;

/**
 * Either two towers + fresh heads (vision, text, projectionDim, head, dropout), or a whole pretrained CLIP
 * (`pretrained`: an HF CLIPModel directory, a Hub id, or a run's best/) — never both. `freeze` applies to
 * either. The parsed form holds only the keys of its kind, with defaults filled in.
 */
export const ModelConfigSchema = z
  .strictObject({
    /** A whole HF CLIPModel (directory or Hub id, e.g. openai/clip-vit-base-patch32): towers, heads and logit scale. */
    pretrained: z.string().min(1).optional(),
    vision: VisionTowerSchema.optional(),
    text: TowerSchema.optional(),
    /** Default 256. */
    projectionDim: positiveInt.optional(),
    /** 'linear': Linear + LayerNorm (the reference); 'mlp': the tutorial's two-layer head. Default 'linear'. */
    head: z.enum(['linear', 'mlp']).optional(),
    /** Dropout of the mlp head. Default 0.1. */
    dropout: rate.optional(),
    /** 'none' (full fine-tuning), 'towers' (only heads + scale train; enables the feature cache), or per tower. */
    freeze: FreezeSchema,
  })
  .superRefine((m, ctx) => {
    if (m.pretrained !== undefined) {
      for (const key of TOWER_MODEL_KEYS) {
        if (m[key] !== undefined) {
          ctx.addIssue({ code: 'custom', path: [key], message: `cannot be combined with model.pretrained (the pretrained CLIP fixes its towers and heads); remove model.${key}` });
        }
      }
      return;
    }
    for (const key of ['vision', 'text'] as const) {
      if (m[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'required (or give model.pretrained, a whole pretrained CLIP)' });
    }
  })
  .transform((m): PretrainedModelConfig | TowersModelConfig =>
    m.pretrained !== undefined
      ? { pretrained: m.pretrained, freeze: m.freeze }
      : {
          vision: m.vision as VisionTowerSpec,
          text: m.text as TowerSpec,
          projectionDim: m.projectionDim ?? 256,
          head: m.head ?? 'linear',
          dropout: m.dropout ?? 0.1,
          freeze: m.freeze,
        },
  );

export type TowerSpec = z.infer<typeof TowerSchema>;
export type VisionTowerSpec = z.infer<typeof VisionTowerSchema>;
export type ModelFreeze = z.infer<typeof FreezeSchema>;
/** A model built from two towers and fresh heads. */
export interface TowersModelConfig {
  vision: VisionTowerSpec;
  text: TowerSpec;
  projectionDim: number;
  head: 'linear' | 'mlp';
  dropout: number;
  freeze: ModelFreeze;
}
/** A whole pretrained HF CLIP as the starting point. */
export interface PretrainedModelConfig {
  pretrained: string;
  freeze: ModelFreeze;
}

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
  /** tokenizer.json, or a directory holding it (with tokenizer_config.json). Required unless model.pretrained gives it. */
  tokenizer: z.string().min(1).optional(),
  /** Captions are tokenised, truncated and padded to this many tokens (reference: 40). */
  // 3: the tokenizer's [CLS] and [SEP] plus at least one caption token (what the tokenizer itself checks).
  maxLength: z.number().int().min(3, 'must be ≥ 3: [CLS] + [SEP] + at least one token').max(512).default(40),
  batchSize: positiveInt.default(32),
  /** Batch size of validation/test passes (in-batch top-k is out of this many). Default: batchSize. */
  evalBatchSize: positiveInt.optional(),
  /** Square image size the processor resizes to (must match the vision tower). Default 224, or model.pretrained's. */
  imageSize: positiveInt.optional(),
  /**
   * A directory with preprocessor_config.json (mean/std/resample); default: model.pretrained's, else
   * OpenAI CLIP mean/std, bilinear.
   */
  imageProcessor: z.string().min(1).optional(),
  /**
   * JPEG decoder: 'turbo' (default) = libjpeg-turbo's fast IDCT, ~4× faster, within a few grey levels of
   * Pillow; 'sharp' = Pillow's decode bit for bit (PIL + torchvision's exact pixels, as the reference).
   */
  imageDecoder: z.enum(['turbo', 'sharp']).default('turbo'),
  /** Training caption per image per epoch: 'random' (the reference) or always the 'first'. */
  captionPick: z.enum(['random', 'first']).default('random'),
  /** Use only the first N images of each split (quick runs). */
  limit: z
    .strictObject({ train: positiveInt.optional(), val: positiveInt.optional(), test: positiveInt.optional() })
    .optional(),
  /** Decoded images held in memory across epochs (needs RAM: N·3·H·W·4 bytes). Val/test only when augment is on. */
  cacheImages: z.boolean().default(false),
  /**
   * Training-split augmentation (torchvision semantics), seeded per (seed, epoch, image): randomResizedCrop
   * { scale, ratio }, hflip (probability), colorJitter { brightness, contrast, saturation }. Absent: none
   * (the reference). Val and test are never augmented.
   */
  augment: AugmentOptionsSchema.optional(),
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
    /**
     * adam / adamw: keep the moments in JS memory instead of backend tensors (HostAdamOptimizer): frees twice
     * the trained weights' bytes on the wasm heap, same numbers, a slower update. Unset or 'auto': on wasm when
     * the batch would not run whole with them on the heap and moving them lets micro-batches hold more rows
     * (what the run log's micro-batch line says); elsewhere false.
     */
    stateOnHost: z.union([z.boolean(), z.literal('auto')]).optional(),
    /** Clip gradients to this global L2 norm. */
    clipGradNorm: z.number().positive().optional(),
    /** Batches averaged into each optimizer step (each with its own negatives; training.microBatch splits one batch exactly). */
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

/**
 * Per-optimizer-step LR schedule (open_clip's default): linear warmup over `warmupSteps` to each group's
 * configured LR, then cosine decay to `minLr` at the last step of `schedule.epochs`.
 */
const WarmupCosineSchema = z.strictObject({
  kind: z.literal('warmup-cosine'),
  warmupSteps: z.number().int().min(0),
  /** Absolute floor of the decay (default 0). */
  minLr: z.number().min(0).optional(),
});

const PLATEAU_DEFAULT = { factor: 0.5, patience: 2, threshold: 1e-4, thresholdMode: 'rel', cooldown: 0, minLr: 0 } as const;

export const ScheduleConfigSchema = z.strictObject({
  epochs: z.number().int().min(1).max(10_000).default(30),
  /**
   * A per-step LR schedule. Absent: the LR is constant except for reduceLROnPlateau. warmup-cosine sets
   * every LR before every step, so it excludes reduceLROnPlateau (which then defaults to false).
   */
  lr: WarmupCosineSchema.optional(),
  /** Default: factor 0.5, patience 2, threshold 1e-4 rel, cooldown 0, minLr 0 — or false with schedule.lr. */
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
    .optional(),
  earlyStopping: z
    .union([z.literal(false), z.strictObject({ patience: z.number().int().min(1).default(5), minDelta: z.number().min(0).default(0) })])
    .default({ patience: 5, minDelta: 0 }),
})
  .superRefine((s, ctx) => {
    if (s.lr && s.reduceLROnPlateau) {
      ctx.addIssue({ code: 'custom', path: ['reduceLROnPlateau'], message: `cannot be combined with schedule.lr (${s.lr.kind} sets every LR each step); set reduceLROnPlateau: false or remove schedule.lr` });
    }
  })
  // Without schedule.lr the reference's ReduceLROnPlateau stays the default.
  .transform(({ epochs, lr, reduceLROnPlateau, earlyStopping }) => ({
    epochs,
    ...(lr ? { lr } : {}),
    reduceLROnPlateau: reduceLROnPlateau ?? (lr ? (false as const) : { ...PLATEAU_DEFAULT }),
    earlyStopping,
  }));

export const EvalConfigSchema = z.strictObject({
  /** k of the in-batch top-k accuracies (reference: 1 and 5). */
  topK: z.array(positiveInt).min(1).default([1, 5]),
  /** K of full-split Recall@K in both directions. */
  recallK: z.array(positiveInt).min(1).default([1, 5, 10]),
});

/** Distillation from a teacher CLIP (open_clip's DistillClipLoss); see docs/training.md. */
const DistillSchema = z.strictObject({
  /** The teacher: a CLIP checkpoint directory (HF CLIPModel or clip-ts, e.g. a run's best/) or a Hub id. */
  teacher: z.string().min(1),
  /** Weight of the distillation term added to the CLIP loss (open_clip: 1). */
  weight: z.number().min(0).default(1),
});

/** EMA of the weights (timm's ModelEmaV2, with ModelEmaV3's update_after_step as warmupSteps). */
const EmaSchema = z.strictObject({
  /** Weight of the old average per optimizer step. */
  decay: z.number().gt(0).lt(1).default(0.999),
  /** Optimizer steps 1..warmupSteps copy the weights instead of averaging them. */
  warmupSteps: z.number().int().min(0).default(0),
});

const ExperimentFields = z.strictObject({
  /** Seeds every random source: weight init, shuffles, caption picks, dropout. */
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(42),
  backend: z.enum(BACKEND_NAMES).default('auto'),
  /**
   * Threads of the wasm backend (the others ignore it). Unset: $CLIP_WASM_THREADS, else every core
   * (os.availableParallelism()); 1 = the single-threaded build. tfjs-backend-wasm uses at most 8.
   */
  threads: positiveInt.max(MAX_WASM_THREADS).optional(),
  model: ModelConfigSchema,
  data: DataConfigSchema,
  optim: OptimConfigSchema.default(OptimConfigSchema.parse({})),
  /** 'clip': softmax cross-entropy (the reference); 'siglip': pairwise sigmoid loss with a learnable bias. */
  loss: z.enum(LOSS_TYPES).default('clip'),
  /**
   * Positive pairs of a batch: 'diagonal' (only row i with row i), 'grouped' (also rows with the same image
   * or captions equal after normalisation), 'auto' (also rows with the same image; each image appears once
   * per epoch in our loaders, so this is 'diagonal' for them).
   */
  targets: z.enum(TARGET_MODES).default('auto'),
  schedule: ScheduleConfigSchema.default(ScheduleConfigSchema.parse({})),
  /** Add a teacher CLIP's soft targets to the CLIP loss (needs loss: clip). */
  distill: DistillSchema.optional(),
  eval: EvalConfigSchema.default(EvalConfigSchema.parse({})),
  training: z
    .strictObject({
      /**
       * Rows per tower pass of the exact micro-batched step (same loss and gradients as the whole batch,
       * unlike optim.accumulation): 'auto' picks the whole batch when its activations fit the backend's
       * memory (wasm: 4 GB) next to the weights, gradients and optimizer state, else the largest chunk that does.
       */
      microBatch: z.union([positiveInt, z.literal('auto')]).default('auto'),
      /**
       * Recompute each transformer block of the trained towers in the backward pass instead of keeping its
       * activations (HF's gradient_checkpointing): same loss and gradients, far less memory, one more
       * forward pass. Unset: turned on by microBatch 'auto' when even one row would not fit without it.
       */
      gradientCheckpointing: z.boolean().optional(),
      /**
       * Data-parallel replicas (the main thread plus worker threads), each on its share of every batch.
       * Default 'auto': on the wasm and cpu backends, when the towers train, as many replicas as cores
       * with at least 16 rows each (fewer lose to one replica with every wasm thread), each with
       * cores / replicas wasm threads; else 1. Results agree with 1 replica within float-summation
       * tolerance, and are bit-for-bit repeatable (resume included) for a given count.
       */
      workers: z.union([z.number().int().min(1).max(256), z.literal('auto')]).default('auto'),
      /** Keep an exponential moving average of the weights, validated and checkpointed (best/ema, last/ema) beside them. */
      ema: EmaSchema.optional(),
    })
    .default({ microBatch: 'auto', workers: 'auto' }),
  /** Frozen-tower feature cache: 'auto' uses it when both towers are frozen; false never. */
  featureCache: z
    .strictObject({ enabled: z.union([z.literal('auto'), z.literal(false)]).default('auto'), dir: z.string().min(1).optional() })
    .default({ enabled: 'auto' }),
  output: z.strictObject({ runDir: z.string().min(1).default('runs/experiment') }).default({ runDir: 'runs/experiment' }),
});

/** Without a pretrained CLIP the data config must name the tokenizer, and the image size defaults to the reference's. */
export const ExperimentConfigSchema = ExperimentFields.superRefine((c, ctx) => {
  if (!('pretrained' in c.model) && c.data.tokenizer === undefined) {
    ctx.addIssue({ code: 'custom', path: ['data', 'tokenizer'], message: 'required (a tokenizer.json or a directory holding one) unless model.pretrained provides it' });
  }
  if (c.distill && c.loss !== 'clip') {
    ctx.addIssue({ code: 'custom', path: ['distill'], message: `distillation adds to the CLIP softmax loss (open_clip's DistillClipLoss); it cannot be combined with loss: ${c.loss}` });
  }
}).transform((c) => ('pretrained' in c.model || c.data.imageSize !== undefined ? c : { ...c, data: { ...c.data, imageSize: 224 } }));

/** A parsed config: every default filled in. */
export type ExperimentConfig = z.infer<typeof ExperimentConfigSchema>;
/** What a user writes: defaults optional. */
export type ExperimentConfigInput = z.input<typeof ExperimentConfigSchema>;
export type TowerFreeze = z.infer<typeof TowerFreezeSchema>;

/** The JSON Schema committed as docs/config.schema.json (editors validate config files with it). */
export function experimentJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ExperimentConfigSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
