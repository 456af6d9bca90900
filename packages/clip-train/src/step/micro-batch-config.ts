import type { CLIPModel } from '@clip-ts/core';
import type { ExperimentConfig } from '../config/schema.js';
import { activationBytesPerRow, chooseMicroBatch, transformerShape, type MicroBatchChoice } from './micro-batch-auto.js';

const bytesOf = (vars: ReadonlyArray<{ size: number }>): number => 4 * vars.reduce((a, v) => a + v.size, 0);

/**
 * `training.microBatch` of a run that trains through the towers: a number is taken as given (capped at
 * the batch), 'auto' is estimated from the tower configs against the backend's memory (chooseMicroBatch).
 */
export function resolveMicroBatch(config: ExperimentConfig, model: CLIPModel, frozen: { vision: boolean; text: boolean }, backend: string): MicroBatchChoice {
  const batch = config.data.batchSize;
  const setting = config.training.microBatch;
  if (setting !== 'auto') {
    const microBatch = Math.min(setting, batch);
    return { microBatch, reason: microBatch < batch ? `${microBatch} rows of ${batch} (training.microBatch)` : `whole batch (${batch})` };
  }
  const towers: Array<number | undefined> = [];
  const seq = config.data.maxLength;
  if (!frozen.vision) {
    const s = transformerShape(model.imageEncoder.getConfig(), 'image', seq);
    towers.push(s && activationBytesPerRow(s));
  }
  if (!frozen.text) {
    const s = transformerShape(model.textEncoder.getConfig(), 'text', seq);
    towers.push(s && activationBytesPerRow(s));
  }
  const trainable = model.trainableVariables();
  const o = config.optim;
  return chooseMicroBatch(batch, towers, {
    backend,
    weightBytes: bytesOf(model.namedVariables().map((nv) => nv.variable)),
    trainableBytes: bytesOf(trainable),
    optimizerSlots: o.name === 'sgd' ? ((o.momentum ?? 0) > 0 ? 1 : 0) : 2,
  });
}
