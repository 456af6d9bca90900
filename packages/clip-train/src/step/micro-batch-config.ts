import type { CLIPModel } from '@clip-ts/core';
import type { ExperimentConfig } from '../config/schema.js';
import { supportsCheckpointing } from './checkpointing.js';
import {
  activationBytesPerRow,
  checkpointedActivationBytesPerRow,
  chooseMicroBatch,
  optimizerUpdateBytes,
  transformerShape,
  type BudgetInput,
  type TowerShape,
  type MicroBatchChoice,
  type UpdateMemoryOptions,
} from './micro-batch-auto.js';

const bytesOf = (vars: ReadonlyArray<{ size: number }>): number => 4 * vars.reduce((a, v) => a + v.size, 0);

/**
 * Checkpointing is chosen over plain chunks of fewer than CHECKPOINT_BELOW_ROWS rows when it fits at least
 * CHECKPOINT_ROW_GAIN times as many rows. Measured on one ViT-base/16 tower on wasm (2 threads, chunked
 * step passes i + iii, the shared 2-core machine at load 3–5, so ±50%): 1 plain row 4.3–9.0 s per row,
 * 1 checkpointed row 8.4 s, 8 checkpointed rows 6.4–7.4 s per row. Recomputing costs one more forward
 * per block, which larger chunks win back (8 checkpointed rows per row ≈ 0.8× 1 checkpointed row, and
 * no worse than 1 plain row), and 32 one-row chunks also repeat every per-chunk cost (the rng snapshot,
 * the output-gradient slices, the gradient sum) 32 times. Past a few plain rows the extra forward is not won
 * back, so checkpointing is not chosen there.
 */
export const CHECKPOINT_BELOW_ROWS = 4;
export const CHECKPOINT_ROW_GAIN = 4;

/** What autoMicroBatch needs to know about the run. */
export interface AutoMicroBatchOptions {
  batchSize: number;
  /** Caption length (the text tower's sequence). */
  maxLength: number;
  /** tfjs's backend name (`wasm`, `cpu`, …). */
  backend: string;
  optim: UpdateMemoryOptions & { momentum?: number | undefined };
  /** training.gradientCheckpointing: true / false as set, undefined lets auto decide. */
  gradientCheckpointing?: boolean | undefined;
  /** Memory the backend can use (default: activationBudget's). */
  capacity?: number;
}

/**
 * `training.microBatch: 'auto'` for `model` with the given towers frozen: the chunk size and whether the
 * trained towers recompute their blocks (gradient checkpointing), from the tower configs against the
 * memory the step holds (weights; gradients, their running sum and one chunk's gradients; optimizer state and
 * the update's transients). Checkpointing, unless set: on when even one plain row would not fit, or when
 * plain chunks would be tiny and checkpointing fits several times more rows (CHECKPOINT_ROW_GAIN), and every
 * trained tower supports it. Adam's moments, unless optim.stateOnHost is set: in JS memory when on wasm the
 * batch would not run whole with them on the heap and moving them lets chunks hold more rows (`stateOnHost`
 * in the result). Does not touch the model. The bench's big-train task uses it too.
 */
export function autoMicroBatch(model: CLIPModel, frozen: { vision: boolean; text: boolean }, o: AutoMicroBatchOptions): MicroBatchChoice {
  const setting = o.optim.stateOnHost;
  if (o.optim.name === 'sgd' || typeof setting === 'boolean') return { ...planChunks(model, frozen, o), stateOnHost: setting === true };
  // 'auto': only wasm's heap is a limit of its own (elsewhere the backend's memory is the host's); the moments
  // move to JS memory (HostAdamOptimizer: same numbers, ~1 s per 100M weights of update) when with them on the
  // heap the batch would not run whole and without them the chunks hold more rows.
  const device = planChunks(model, frozen, { ...o, optim: { ...o.optim, stateOnHost: false } });
  if (o.backend !== 'wasm' || device.microBatch >= o.batchSize) return { ...device, stateOnHost: false };
  const host = planChunks(model, frozen, { ...o, optim: { ...o.optim, stateOnHost: true } });
  if ((device.overBudget && !host.overBudget) || host.microBatch > device.microBatch) {
    const was = device.overBudget ? 'not even 1 row would fit' : `${device.microBatch} row${device.microBatch === 1 ? '' : 's'} per chunk`;
    return { ...host, stateOnHost: true, reason: `${host.reason}; Adam's moments in JS memory (optim.stateOnHost auto: with them on the wasm heap ${was})` };
  }
  return { ...device, stateOnHost: false };
}

/** autoMicroBatch for a given place of the optimizer state (o.optim.stateOnHost true or not). */
function planChunks(model: CLIPModel, frozen: { vision: boolean; text: boolean }, o: AutoMicroBatchOptions): MicroBatchChoice {
  const batch = o.batchSize;
  const shapes: Array<TowerShape | undefined> = [];
  const trained: Array<'vision' | 'text'> = [];
  if (!frozen.vision) {
    shapes.push(transformerShape(model.imageEncoder.getConfig(), 'image', o.maxLength));
    trained.push('vision');
  }
  if (!frozen.text) {
    shapes.push(transformerShape(model.textEncoder.getConfig(), 'text', o.maxLength));
    trained.push('text');
  }
  const trainable = model.trainableVariables();
  const largest = Math.max(0, ...trainable.map((v) => 4 * v.size));
  const budget: BudgetInput = {
    backend: o.backend,
    weightBytes: bytesOf(model.namedVariables().map((nv) => nv.variable)),
    trainableBytes: bytesOf(trainable),
    // Adam's moments kept on the host (optim.stateOnHost) take nothing from the backend's memory.
    optimizerSlots: o.optim.name === 'sgd' ? ((o.optim.momentum ?? 0) > 0 ? 1 : 0) : o.optim.stateOnHost === true ? 0 : 2,
    // One chunk's gradients are one tower's weights (ViT-base: 327 MiB), but counting only those planned 7-row
    // chunks for ViT-base/16 + DistilBERT-base with Adam on wasm, and the second step ran out of the 4 GB heap
    // (abort in registerTensor, 2026-11-30): the estimate misses ~0.5 GB there. Every trained weight (608 MB)
    // is counted instead, which plans 5 rows.
    chunkGradientBytes: bytesOf(trainable),
    updateBytes: optimizerUpdateBytes(o.optim, o.backend, largest),
    ...(o.capacity !== undefined ? { capacity: o.capacity } : {}),
  };
  const choose = (perRow: (s: TowerShape) => number): MicroBatchChoice => chooseMicroBatch(batch, shapes.map((s) => s && perRow(s)), budget);
  if (o.gradientCheckpointing === true) {
    const c = choose(checkpointedActivationBytesPerRow);
    return { ...c, gradientCheckpointing: true, reason: `${c.reason}, gradient checkpointing (training.gradientCheckpointing)` };
  }
  const plain = choose(activationBytesPerRow);
  if (plain.microBatch >= batch || o.gradientCheckpointing === false || !supportsCheckpointing(model, trained)) return { ...plain, gradientCheckpointing: false };
  const c = choose(checkpointedActivationBytesPerRow);
  if (plain.overBudget) return { ...c, gradientCheckpointing: true, reason: `${c.reason}, gradient checkpointing (auto: 1 row would not fit without it)` };
  if (plain.microBatch < CHECKPOINT_BELOW_ROWS && c.microBatch >= CHECKPOINT_ROW_GAIN * plain.microBatch) {
    return { ...c, gradientCheckpointing: true, reason: `${c.reason}, gradient checkpointing (auto: ${c.microBatch} rows per chunk instead of ${plain.microBatch})` };
  }
  return { ...plain, gradientCheckpointing: false };
}

/**
 * `training.microBatch`, `training.gradientCheckpointing` and `optim.stateOnHost` of a run that trains through the
 * towers: a number is taken as given (capped at the batch), 'auto' is autoMicroBatch's choice for the backend.
 * Does not touch the model.
 */
export function resolveMicroBatch(config: ExperimentConfig, model: CLIPModel, frozen: { vision: boolean; text: boolean }, backend: string): MicroBatchChoice {
  const batch = config.data.batchSize;
  const setting = config.training.microBatch;
  const checkpointing = config.training.gradientCheckpointing;
  const auto = autoMicroBatch(model, frozen, { batchSize: batch, maxLength: config.data.maxLength, backend, optim: config.optim, gradientCheckpointing: checkpointing });
  if (setting !== 'auto') {
    const microBatch = Math.min(setting, batch);
    return {
      microBatch,
      gradientCheckpointing: checkpointing === true,
      // Where the optimizer state lives is planned for the batch whatever the chunk size.
      ...(auto.stateOnHost === undefined ? {} : { stateOnHost: auto.stateOnHost }),
      reason: `${microBatch < batch ? `${microBatch} rows of ${batch} (training.microBatch)` : `whole batch (${batch})`}${auto.stateOnHost && config.optim.stateOnHost !== true ? "; Adam's moments in JS memory (optim.stateOnHost auto)" : ''}`,
    };
  }
  return auto;
}
