import type { CLIPModel } from '@clip-ts/core';
import type { ExperimentConfig } from '../config/schema.js';
import { supportsCheckpointing } from './checkpointing.js';
import {
  activationBytesPerRow,
  checkpointedActivationBytesPerRow,
  chooseMicroBatch,
  transformerShape,
  type TowerShape,
  type MicroBatchChoice,
} from './micro-batch-auto.js';

const bytesOf = (vars: ReadonlyArray<{ size: number }>): number => 4 * vars.reduce((a, v) => a + v.size, 0);

/**
 * `training.microBatch` and `training.gradientCheckpointing` of a run that trains through the towers: a
 * number is taken as given (capped at the batch), 'auto' is estimated from the tower configs against the
 * backend's memory (chooseMicroBatch). Checkpointing is what the config says; unset, 'auto' turns it on
 * when even one row would not fit without it and every trained tower supports it. Does not touch the model.
 */
export function resolveMicroBatch(config: ExperimentConfig, model: CLIPModel, frozen: { vision: boolean; text: boolean }, backend: string): MicroBatchChoice {
  const batch = config.data.batchSize;
  const setting = config.training.microBatch;
  const checkpointing = config.training.gradientCheckpointing;
  if (setting !== 'auto') {
    const microBatch = Math.min(setting, batch);
    return {
      microBatch,
      gradientCheckpointing: checkpointing === true,
      reason: microBatch < batch ? `${microBatch} rows of ${batch} (training.microBatch)` : `whole batch (${batch})`,
    };
  }
  const shapes: Array<TowerShape | undefined> = [];
  const seq = config.data.maxLength;
  const trained: Array<'vision' | 'text'> = [];
  if (!frozen.vision) {
    shapes.push(transformerShape(model.imageEncoder.getConfig(), 'image', seq));
    trained.push('vision');
  }
  if (!frozen.text) {
    shapes.push(transformerShape(model.textEncoder.getConfig(), 'text', seq));
    trained.push('text');
  }
  const trainable = model.trainableVariables();
  const o = config.optim;
  const budget = {
    backend,
    weightBytes: bytesOf(model.namedVariables().map((nv) => nv.variable)),
    trainableBytes: bytesOf(trainable),
    // Adam's moments kept on the host (optim.stateOnHost) take nothing from the backend's memory.
    optimizerSlots: o.name === 'sgd' ? ((o.momentum ?? 0) > 0 ? 1 : 0) : o.stateOnHost === true ? 0 : 2,
  };
  const choose = (perRow: (s: TowerShape) => number): MicroBatchChoice => chooseMicroBatch(batch, shapes.map((s) => s && perRow(s)), budget);
  if (checkpointing === true) {
    const c = choose(checkpointedActivationBytesPerRow);
    return { ...c, gradientCheckpointing: true, reason: `${c.reason}, gradient checkpointing (training.gradientCheckpointing)` };
  }
  const plain = choose(activationBytesPerRow);
  if (!plain.overBudget || checkpointing === false || !supportsCheckpointing(model, trained)) return { ...plain, gradientCheckpointing: false };
  const c = choose(checkpointedActivationBytesPerRow);
  return { ...c, gradientCheckpointing: true, reason: `${c.reason}, gradient checkpointing (auto: 1 row would not fit without it)` };
}
