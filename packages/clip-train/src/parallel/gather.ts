import { arrive, awaitCount, CTRL, type SharedControl } from './barrier.js';
import type { GatherFn } from './shard-step.js';
import type { PhaseClock } from './timing.js';

/**
 * The all-gather of pool step `step` for a replica owning rows [start, end): write them into the shared
 * [B, D] buffers, wait until all `replicas` have, copy the whole batch out.
 *
 * It runs inside tf.variableGrads, and a throw there leaks the tape's saved tensors (tfjs frees them only
 * after a completed backward pass). So a failed or timed-out wait returns zeros and reports through
 * `failure()`, which the caller checks once the gradients are done (and disposed).
 */
export function sharedGather(
  o: { control: SharedControl; imageEmbeds: Float32Array; textEmbeds: Float32Array; dim: number; replicas: number; timeoutMs: number },
  step: number,
  rows: { start: number; end: number; batchSize: number },
  clock?: PhaseClock,
): { gather: GatherFn; failure: () => Error | undefined } {
  let failure: Error | undefined;
  const gather: GatherFn = (image, text) => {
    clock?.mark('towers');
    o.imageEmbeds.set(image, rows.start * o.dim);
    o.textEmbeds.set(text, rows.start * o.dim);
    arrive(o.control, CTRL.EMBEDS);
    const n = rows.batchSize * o.dim;
    try {
      awaitCount(o.control, CTRL.EMBEDS, o.replicas * (step + 1), o.timeoutMs, `the embeddings of step ${step}`);
    } catch (err) {
      failure = err as Error;
      return { image: new Float32Array(n), text: new Float32Array(n) };
    } finally {
      clock?.mark('gather');
    }
    return { image: o.imageEmbeds.slice(0, n), text: o.textEmbeds.slice(0, n) };
  };
  return { gather, failure: () => failure };
}
