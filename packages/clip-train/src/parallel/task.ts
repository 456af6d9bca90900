import { positiveMask, type CLIPModel, type TargetMode } from '@clip-ts/core';
import type { CaptionBatch } from '@clip-ts/data';
import { clipModelTask } from '../experiment/model.js';
import type { TrainTask } from '../trainer/types.js';
import type { ReplicaPool } from './pool.js';

/**
 * clipModelTask whose training gradients come from `pool` (data-parallel over its replicas); evaluation
 * stays on the main thread. The pool must have been started from `model` with the same freeze.
 */
export function parallelModelTask(model: CLIPModel, frozen: { vision: boolean; text: boolean }, pool: ReplicaPool, targets: TargetMode = 'auto'): TrainTask<CaptionBatch> {
  const plain = clipModelTask(model, frozen, targets);
  return {
    ...plain,
    lossAndGrads: (batch, variables) => {
      const mask = positiveMask(targets, batch.indices, batch.captions);
      return pool.lossAndGrads(batch, variables, mask ? Float32Array.from(mask) : undefined);
    },
  };
}
