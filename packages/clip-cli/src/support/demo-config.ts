import type { ShapesOptions } from '@clip-ts/data';
import type { ExperimentConfigInput } from '@clip-ts/train';
import { join } from 'node:path';
import { bundledTokenizerFile } from './assets.js';
import { DEMO_SHAPES } from './datasets.js';
import { deepMerge, type DeepPartial } from './deep-merge.js';

/** Changes to the demo's experiment config beyond the sizes below (schedule, optimizer, loss, data options). */
export type DemoConfigPatch = DeepPartial<ExperimentConfigInput>;

/** Prompt variants of the demo's zero-shot test (bare class name, plain prompt, a "blurry" prompt). */
export const DEMO_TEMPLATES: readonly string[] = ['{}', 'a photo of a {}.', 'a blurry photo of a {}.'];

/** An image-tower config as `model.vision.config` takes it (HF config.json keys). */
export type DemoVisionTower = { model_type: string } & Record<string, unknown>;

export interface DemoSettings {
  /** Shapes set options (the full demo uses DEMO_SHAPES). */
  shapes: ShapesOptions;
  epochs: number;
  batchSize: number;
  lr: number;
  /** Width of both towers and the projection. */
  hidden: number;
  layers: number;
  /** ViT patch size (the image side must be a multiple). */
  patchSize: number;
  maxLength: number;
  /**
   * An HF image-tower config used instead of the ViT built from hidden/layers/patchSize (e.g. a small
   * ResNet, `model_type: 'resnet'`); taken as is, so it must fit the 32-px images by itself.
   */
  visionTower?: DemoVisionTower;
  /** Laid over the experiment config demoExperimentConfig builds from the fields above (last, so it wins). */
  config?: DemoConfigPatch;
}

/**
 * The full demo: a CLIP trained from scratch on the synthetic shapes set in a few minutes on CPU (wasm).
 * Sized so two CPU cores finish well inside 10 minutes while held-out zero-shot clears 3× chance: measured
 * 5 min 42 s on wasm single-threaded (3 min 37 s with 2 wasm threads, the default since 2026-11-30, same numbers), held-out top-1 among 30 names 24–29% (chance 3.3%); with 6 epochs
 * it was 15–21%, with 8 epochs 21–25% (docs/cli.md). A wider ViT with lr 2e-3, or patch 4, learned slower.
 * The demo ablation (bench/ablate-demo.mjs, docs/training.md) kept this recipe: at 3 epochs it reached
 * 29.5% held-out / 30.0% seen top-1 of 30 (87 s CPU); batch 32 (30.2%), warmup + cosine at peak 3e-3
 * (27.7%) and AdamW (26.5%) tie within the ±1.9-point noise, SigLIP (24.7%) and first-caption training
 * (17.8%) are worse. Round 2 (single-threaded, 3 epochs) kept it too: a small ResNet tower (resnet-tiny
 * 23.3%, resnet-small 26.0%) and RandomResizedCrop (24.0%) raise seen top-1 to 39–42% but lower
 * held-out, patch dropout 0.5 ties (26.2%, 68 s CPU instead of 88 s), EMA 0.99 lags (19.5%): shape is
 * learnable, composing unseen (colour, shape) pairs is what limits held-out top-1.
 */
export const FULL_DEMO: DemoSettings = {
  shapes: DEMO_SHAPES,
  epochs: 10,
  batchSize: 64,
  lr: 1e-3,
  hidden: 64,
  layers: 2,
  patchSize: 8,
  maxLength: 16,
};

/** `--quick`: the same pipeline on a sliver of data (well under a minute); accuracy is not the point. */
export const QUICK_DEMO: DemoSettings = {
  shapes: { seed: 42, imageSize: 32, trainSize: 128, valSize: 32, testSize: 32, heldOutSize: 30 },
  epochs: 1,
  batchSize: 32,
  lr: 1e-3,
  hidden: 32,
  layers: 1,
  patchSize: 8,
  maxLength: 16,
};

/**
 * The experiment config of the demo: a tiny ViT (32 px, patch 8) and a tiny DistilBERT with the real
 * bert-base-uncased vocabulary, both from scratch, linear projection heads, Adam.
 */
export function demoExperimentConfig(s: DemoSettings, runDir: string, backend: ExperimentConfigInput['backend']): ExperimentConfigInput {
  const imageSize = s.shapes.imageSize ?? 32;
  const built: ExperimentConfigInput = {
    seed: 42,
    backend: backend ?? 'auto',
    model: {
      vision: {
        config: s.visionTower ?? {
          model_type: 'vit',
          hidden_size: s.hidden,
          num_hidden_layers: s.layers,
          num_attention_heads: 4,
          intermediate_size: 2 * s.hidden,
          image_size: imageSize,
          patch_size: s.patchSize,
        },
      },
      text: {
        config: {
          model_type: 'distilbert',
          dim: s.hidden,
          n_layers: s.layers,
          n_heads: 4,
          hidden_dim: 2 * s.hidden,
          max_position_embeddings: Math.max(32, s.maxLength),
          dropout: 0,
          attention_dropout: 0,
        },
      },
      projectionDim: s.hidden,
      head: 'linear',
    },
    data: {
      dataset: { kind: 'shapes', options: { ...s.shapes } },
      tokenizer: bundledTokenizerFile(),
      maxLength: s.maxLength,
      batchSize: s.batchSize,
      imageSize,
      cacheImages: true,
    },
    optim: { name: 'adam', lr: s.lr },
    schedule: { epochs: s.epochs },
    output: { runDir },
  };
  return deepMerge(built, s.config);
}

/**
 * The checkpoint the demo's zero-shot test scores: `best/`, or `best/ema` when the run keeps an EMA of the
 * weights (the average is what such a run is for; best/ema is the average at the best raw epoch).
 */
export function demoScoredCheckpoint(config: ExperimentConfigInput, runDir: string): string {
  return config.training?.ema ? join(runDir, 'best', 'ema') : join(runDir, 'best');
}
