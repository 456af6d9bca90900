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
  // Variants for options on other branches (augmentation, patch dropout, EMA, distillation) go here once
  // merged, as config patches, e.g.
  //   { name: 'augment', note: 'RandomResizedCrop + flip + jitter', patch: { config: { data: { augment: { … } } } } },
  //   { name: 'patch-dropout-0.5', note: 'FLIP: keep half the patch tokens in training', patch: { config: { model: { … } } } },
  //   { name: 'ema-0.999', note: 'EMA of the weights, evaluated', patch: { config: { ema: { … } } } },
  //   { name: 'distill', note: 'logits of a teacher CLIP', patch: { config: { distill: { teacher: '…' } } } },
  // and combinations of the winners (patch fields merge; spread both patches' config objects).
];
