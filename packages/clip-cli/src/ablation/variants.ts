import type { DemoSettings } from '../support/demo-config.js';
import { deepMerge, type DeepPartial } from '../support/deep-merge.js';

/** One ablation variant: a named partial override of the demo's settings (and, through `config`, its experiment config). */
export interface DemoVariant {
  name: string;
  /** What it changes and why it might help (goes into the table's notes). */
  note: string;
  /**
   * Laid over the demo's settings (FULL_DEMO, or QUICK_DEMO in quick mode, with --epochs applied) with
   * deepMerge; a function gets those settings first (e.g. to size a warmup to the run's steps).
   */
  patch: DeepPartial<DemoSettings> | ((base: DemoSettings) => DeepPartial<DemoSettings>);
}

// Warmup of about one epoch of the full demo (6000 images / batch 64 ≈ 94 steps), kept below the run's
// step count so short runs (--quick, small --epochs) still have a decay phase.
const WARMUP_STEPS = 100;
const warmupCosine = (lr: number) => (base: DemoSettings): DeepPartial<DemoSettings> => {
  const steps = base.epochs * Math.ceil((base.shapes.trainSize ?? 0) / base.batchSize);
  return { lr, config: { schedule: { lr: { kind: 'warmup-cosine', warmupSteps: Math.max(0, Math.min(WARMUP_STEPS, steps - 1)) } } } };
};

/**
 * A ResNet for 32-px images. HF's ResNet has only the ImageNet stem (conv 7×7/2 + max-pool 3×3/2, no
 * CIFAR stem), so 32 px become 8×8 before the first stage; that is enough here because the stem's 7×7
 * convolution reads the full-resolution outline (shapes are 13–27 px wide) and only later stages pool.
 */
const RESNET_SMALL = { model_type: 'resnet', embedding_size: 32, hidden_sizes: [32, 64, 128], depths: [1, 1, 1], layer_type: 'basic' };
const RESNET_TINY = { ...RESNET_SMALL, embedding_size: 16, hidden_sizes: [16, 32, 64] };
// open_clip's default area range (0.9–1) barely moves a 32-px shape; 0.6 still keeps most of every shape.
const AUGMENT_RRC = { randomResizedCrop: { scale: [0.6, 1] as [number, number] } };
// The demo runs ~94 steps an epoch, so timm's 0.999 would still hold mostly the warmup's weights after
// 10 epochs; 0.99 averages over ~100 steps (about an epoch).
const EMA = { decay: 0.99, warmupSteps: 100 };

/**
 * The variants `bench/ablate-demo.mjs` knows, each relative to the current demo default. `baseline` is the
 * default itself; `previous-default` is the recipe the demo had before the ablation (constant LR 1e-3 with
 * ReduceLROnPlateau, Adam, one caption drawn at random, diagonal targets).
 */
export const DEMO_VARIANTS: readonly DemoVariant[] = [
  { name: 'baseline', note: 'the current demo default', patch: {} },
  {
    name: 'previous-default',
    note: 'the demo before the ablation: Adam lr 1e-3, ReduceLROnPlateau, random caption, diagonal targets',
    patch: { lr: 1e-3, config: { optim: { name: 'adam', weightDecay: 0 }, schedule: { lr: undefined }, targets: 'auto', data: { captionPick: 'random' } } },
  },
  { name: 'warmup-cosine', note: 'linear warmup (100 steps) then cosine decay, same peak LR 1e-3', patch: warmupCosine(1e-3) },
  { name: 'warmup-cosine-3e-3', note: 'warmup + cosine with a 3× higher peak LR', patch: warmupCosine(3e-3) },
  {
    name: 'adamw-wd0.05',
    note: 'AdamW, weight decay 0.05, with warmup-cosine 3e-3',
    patch: (base) => deepMerge(warmupCosine(3e-3)(base), { config: { optim: { name: 'adamw', weightDecay: 0.05 } } }),
  },
  { name: 'batch-32', note: 'batch 32: twice the steps per epoch, fewer same-combination negatives per batch', patch: { batchSize: 32 } },
  { name: 'siglip', note: 'pairwise sigmoid loss (SigLIP, t = log 10, b = −10)', patch: { config: { loss: 'siglip' } } },
  { name: 'targets-grouped', note: "targets 'grouped': identical captions in a batch count as positives", patch: { config: { targets: 'grouped' } } },
  {
    name: 'first-caption-grouped',
    note:
      "always the first caption ('a red circle') + grouped targets: a combination's captions are then identical, so its images are never pushed apart from each other's captions (with loss clip the grouping itself changes nothing, see docs/training.md)",
    patch: { config: { targets: 'grouped', data: { captionPick: 'first' } } },
  },
  { name: 'patch-4', note: 'ViT patch 4 (64 tokens instead of 16): finer shape detail, ~4× attention cost', patch: { patchSize: 4 } },
  { name: 'hidden-96', note: 'towers and projection 96 wide instead of 64', patch: { hidden: 96 } },
  { name: 'layers-3', note: 'three transformer blocks per tower instead of two', patch: { layers: 3 } },
  // Round 2 (issue 14): the options merged since — a convolutional tower, augmentation, FLIP, EMA.
  {
    name: 'resnet-small',
    note: 'a small ResNet image tower from scratch (stem 32, stages 32/64/128 of one basic layer): convolutions see outlines at full resolution',
    patch: { visionTower: RESNET_SMALL },
  },
  {
    name: 'resnet-small-2stage',
    note: 'the small ResNet with two stages (32/64): its last feature map stays 4×4 instead of 2×2',
    patch: { visionTower: { ...RESNET_SMALL, hidden_sizes: [32, 64], depths: [1, 1] } },
  },
  {
    name: 'resnet-tiny',
    note: 'the small ResNet at half the width (stem 16, stages 16/32/64): about a quarter of its convolution work',
    patch: { visionTower: RESNET_TINY },
  },
  { name: 'resnet-tiny-rrc', note: 'resnet-tiny + augment-rrc', patch: { visionTower: RESNET_TINY, config: { data: { augment: AUGMENT_RRC } } } },
  { name: 'augment-rrc', note: `RandomResizedCrop, area ${AUGMENT_RRC.randomResizedCrop.scale.join('–')}: moves each shape across patch borders`, patch: { config: { data: { augment: AUGMENT_RRC } } } },
  { name: 'patch-dropout-0.5', note: 'FLIP: half the ViT patch tokens dropped in training, all used at eval', patch: { config: { model: { vision: { patchDropout: 0.5 } } } } },
  { name: 'ema', note: `EMA of the weights (decay ${EMA.decay}, copies for the first ${EMA.warmupSteps} steps), scored instead of the raw weights`, patch: { config: { training: { ema: EMA } } } },
  {
    name: 'resnet-small-rrc',
    note: 'resnet-small + augment-rrc',
    patch: { visionTower: RESNET_SMALL, config: { data: { augment: AUGMENT_RRC } } },
  },
  {
    name: 'resnet-small-ema',
    note: 'resnet-small + ema',
    patch: { visionTower: RESNET_SMALL, config: { training: { ema: EMA } } },
  },
  { name: 'patch-4-rrc', note: 'patch-4 + augment-rrc', patch: { patchSize: 4, config: { data: { augment: AUGMENT_RRC } } } },
  // Distillation needs a teacher CLIP, which the offline demo does not have.
  // Combinations: patch fields merge; spread both patches' config objects.
];
