import { availableParallelism } from 'node:os';

/** `training.workers` of an experiment config. */
export type WorkersSetting = number | 'auto';

/**
 * How many replicas a run uses. 'auto' takes every core when replicas can help: the single-threaded
 * backends (wasm, cpu) training through the towers; tfjs-node already uses every core in its kernels, and
 * the frozen-feature cache trains only the heads, where a step is too small to split. Never more
 * replicas than rows in a batch.
 */
export function resolveWorkers(setting: WorkersSetting | undefined, o: { backend: string; useCache: boolean; batchSize: number; cores?: number }): number {
  const cores = o.cores ?? availableParallelism();
  const wanted = setting === undefined ? 1 : setting === 'auto' ? (o.useCache || !['wasm', 'cpu'].includes(o.backend) ? 1 : cores) : setting;
  return Math.max(1, Math.min(wanted, o.batchSize));
}
