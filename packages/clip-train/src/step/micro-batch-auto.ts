import { totalmem } from 'node:os';
import type { EncoderConfig } from '@clip-ts/core';

/**
 * `training.microBatch: 'auto'`: the largest chunk whose tower activations fit next to the weights,
 * gradients and optimizer state. Estimated from the tower configs, not measured, so it costs nothing at
 * start-up; the coefficients are fitted to tfjs' gradient tape (tf.profile peakBytes of a ViT / DistilBERT
 * training forward+backward on the cpu backend, five shapes) and overestimate those by 5–35% (a term for the pixels covers small images).
 */

/** What the activation estimate needs from a transformer tower. */
export interface TowerShape {
  /** Tokens per row (patches + [CLS] for a ViT, the caption length for a text tower). */
  seq: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** Input values per row the patch embedding reads (3·H·W for images; 0 for token ids). */
  pixels: number;
}

const num = (c: EncoderConfig, ...keys: string[]): number | undefined => {
  for (const k of keys) {
    const v = (c as Record<string, unknown>)[k];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  }
  return undefined;
};

/**
 * The shape of a transformer tower from its HF config (ViT / CLIP vision: image_size, patch_size; BERT-like
 * text towers: `textSeq` tokens), or undefined when the config does not describe one (e.g. a CNN).
 */
export function transformerShape(config: EncoderConfig, kind: 'image' | 'text', textSeq: number): TowerShape | undefined {
  const hidden = num(config, 'hidden_size', 'dim');
  const layers = num(config, 'num_hidden_layers', 'n_layers');
  const heads = num(config, 'num_attention_heads', 'n_heads');
  if (hidden === undefined || layers === undefined || heads === undefined) return undefined;
  const intermediate = num(config, 'intermediate_size', 'hidden_dim') ?? 4 * hidden;
  let seq = textSeq;
  let pixels = 0;
  if (kind === 'image') {
    const size = (config as Record<string, unknown>).image_size;
    const side = typeof size === 'number' ? [size, size] : Array.isArray(size) ? (size as number[]) : undefined;
    const patch = num(config, 'patch_size');
    if (!side || patch === undefined) return undefined;
    seq = Math.floor((side[0] as number) / patch) * Math.floor((side[1] as number) / patch) + 1;
    pixels = 3 * (side[0] as number) * (side[1] as number);
  }
  return { seq, hidden, layers, heads, intermediate, pixels };
}

/** float32 values one row of one block keeps on the tape for its backward pass. */
function blockValuesPerRow(s: TowerShape): number {
  return 106 * s.seq * s.hidden + 9.4 * s.seq * s.intermediate + 17.2 * s.heads * s.seq * s.seq;
}

/** float32 bytes one row keeps alive for the backward pass through `s` (see the module comment). */
export function activationBytesPerRow(s: TowerShape): number {
  // The patch embedding's input, its patch layout and their gradients: a few copies of the pixels.
  return 4 * (s.layers * blockValuesPerRow(s) + 12 * s.pixels);
}

/**
 * The same with gradient checkpointing (TowerOptions.gradientCheckpointing): every block keeps only its
 * input (plus the gradient flowing back, CHECKPOINT_KEPT values per token and hidden unit in all, fitted
 * like the above), and one block's activations exist at a time, while it is recomputed.
 */
export function checkpointedActivationBytesPerRow(s: TowerShape): number {
  return 4 * (CHECKPOINT_KEPT * s.layers * s.seq * s.hidden + blockValuesPerRow(s) + 12 * s.pixels);
}

const CHECKPOINT_KEPT = 2;

/** wasm32's address space: the whole tfjs heap (weights, gradients, optimizer state, activations) lives in it. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

export interface BudgetInput {
  backend: string;
  /** float32 bytes of every weight of the model. */
  weightBytes: number;
  /** float32 bytes of the weights that train. */
  trainableBytes: number;
  /** Optimizer tensors per trained weight (Adam: 2, SGD with momentum: 1, plain SGD: 0). */
  optimizerSlots: number;
  /**
   * Bytes of the gradients one chunk's backward pass produces next to the running sum: the largest trained
   * tower's weights (the sum adds them in place, chunked-step.ts addInto). Default: trainableBytes.
   */
  chunkGradientBytes?: number;
  /** Bytes the optimizer update holds on top of weights, gradients and state (optimizerUpdateBytes). Default 0. */
  updateBytes?: number;
  /** Memory the backend can use; default: the wasm heap on wasm, else 85% of the machine's RAM. */
  capacity?: number;
}

/**
 * Weight-sized tensors the optimizers' tensor paths hold at once while updating one weight, so the largest
 * trained weight sets the update's transient memory. Adam: measured with tf.profile (peakBytes over a
 * 1 M-float weight on wasm, tf.memory() before): 13 for Adam, 14 for AdamW with decay, 15 for Adam with L2
 * decay — every op of the update is alive until its tf.tidy ends (for DistilBERT's 30522×768 embedding,
 * 15 × 94 MB). SGD: 9, counted from its ops (decay 2, momentum 3, Nesterov 2, the step 2).
 */
export const UPDATE_TENSORS = { adam: 15, sgd: 9 } as const;
/** Backends where AdamOptimizer updates in place (fusedAdamUpdate in @clip-ts/core): no transient tensors. */
export const FUSED_UPDATE_BACKENDS: readonly string[] = ['wasm', 'cpu'];

/** The optimizer settings the update's memory depends on (ExperimentConfig['optim'] has them). */
export interface UpdateMemoryOptions {
  name: string;
  /** optim.stateOnHost: true / false as set; 'auto' or unset lets autoMicroBatch decide (false here). */
  stateOnHost?: boolean | 'auto' | undefined;
}

/**
 * Bytes the optimizer update holds beyond weights, gradients and state, given the largest trained weight:
 * 0 for Adam's fused in-place update (wasm, cpu); one weight for Adam with its state on the host (the new
 * weight is written as one tensor); UPDATE_TENSORS × the weight for the tensor paths.
 */
export function optimizerUpdateBytes(optim: UpdateMemoryOptions, backend: string, largestTrainedBytes: number): number {
  if (optim.name === 'sgd') return UPDATE_TENSORS.sgd * largestTrainedBytes;
  if (optim.stateOnHost === true) return largestTrainedBytes;
  // The fused update writes each weight's new values into new storage (wasm's XNNPACK caches packed weights
  // by tensor id; cpu slices may view a weight's array): one weight-sized tensor at a time.
  return FUSED_UPDATE_BACKENDS.includes(backend) ? largestTrainedBytes : UPDATE_TENSORS.adam * largestTrainedBytes;
}

/**
 * Bytes left for activations once weights, gradients, optimizer state and the update's transients are in
 * place (may be ≤ 0). The update runs after the activations are freed, but it is still counted against
 * them: wasm's heap never shrinks and freed activation memory is not one block the update's tensors can
 * reuse, so the two are not assumed to share it.
 */
export function activationBudget(i: BudgetInput): number {
  const capacity = i.capacity ?? (i.backend === 'wasm' ? WASM_HEAP_BYTES : 0.85 * totalmem());
  return usableFraction(i.backend) * capacity - i.weightBytes - i.trainableBytes * (1 + i.optimizerSlots) - (i.updateBytes ?? 0);
}

/**
 * The part of the capacity live tensors can fill. wasm's allocator (dlmalloc in a heap that never shrinks)
 * fragments under the chunked step's mix of weight-sized and activation-sized blocks: a ViT-base/16 +
 * DistilBERT-base step (5-row checkpointed chunks) peaked at 2334 MiB of live tensors in a 3141 MiB heap
 * (bench big-train's peakLiveMiB vs heapAfterStepMiB, 2026-11-30), i.e. 74%, and more rows per chunk churn
 * more; 0.65 keeps a margin. Elsewhere 10% is kept for fragmentation and the batch's inputs.
 */
export const WASM_USABLE_FRACTION = 0.65;

function usableFraction(backend: string): number {
  return backend === 'wasm' ? WASM_USABLE_FRACTION : 0.9;
}

export interface MicroBatchChoice {
  microBatch: number;
  /** True when even one row is estimated over the memory left (the chosen 1 row may not fit). */
  overBudget?: boolean;
  /** Whether the trained towers should recompute their blocks in the backward pass. */
  gradientCheckpointing?: boolean;
  /** Whether Adam's moments should live in JS memory (optim.stateOnHost; set when the plan decided it). */
  stateOnHost?: boolean;
  /** One line for the run log: what was chosen and why. */
  reason: string;
}

const mb = (bytes: number): string => `${Math.round(bytes / 1024 ** 2)} MB`;

/**
 * The micro-batch for a batch of `batchSize` rows. `towers` holds the activation bytes per row of each
 * TRAINED tower (undefined: unknown shape). The whole batch runs both towers' tapes at once; a chunked step
 * runs one tower's tape at a time for `microBatch` rows but holds that tower's chunk gradients next to the
 * running sum (budget.chunkGradientBytes).
 */
export function chooseMicroBatch(batchSize: number, towers: ReadonlyArray<number | undefined>, budget: BudgetInput): MicroBatchChoice {
  const where = `on ${budget.backend}`;
  if (towers.length === 0) return { microBatch: batchSize, reason: `whole batch (${batchSize}): no tower trains` };
  if (towers.some((t) => t === undefined)) return { microBatch: batchSize, reason: `whole batch (${batchSize}): cannot estimate a tower's activations from its config` };
  const perRow = towers as number[];
  const left = activationBudget(budget);
  const whole = perRow.reduce((a, b) => a + b, 0);
  if (batchSize * whole <= left) {
    return { microBatch: batchSize, reason: `whole batch (${batchSize}): ~${mb(batchSize * whole)} of activations fit in ${mb(left)} ${where}` };
  }
  const worst = Math.max(...perRow);
  const room = left - (budget.chunkGradientBytes ?? budget.trainableBytes);
  const fits = Math.floor(room / worst);
  const microBatch = Math.max(1, Math.min(batchSize - 1, fits));
  const note = fits < 1 ? ` (even 1 row is estimated over the ${mb(room)} left: may not fit)` : '';
  return {
    microBatch,
    ...(fits < 1 ? { overBudget: true } : {}),
    reason: `${microBatch} row${microBatch === 1 ? '' : 's'} of ${batchSize} (auto: ~${mb(worst)} of activations per row, ${mb(room)} left ${where} after weights, gradients, optimizer state and update)${note}`,
  };
}
