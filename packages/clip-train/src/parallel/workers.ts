import { availableParallelism } from 'node:os';

/** `training.workers` of an experiment config. */
export type WorkersSetting = number | 'auto';

/**
 * Fewest batch rows per replica for which 'auto' splits a batch. A replica's per-step cost beyond its
 * compute (weights in, gradients out, two barriers, a postMessage) is fixed, so small shards gain less.
 * 16 is the smallest shard measured to win on this 2-core machine (docs/training.md, "Replicas or wasm
 * threads"): the small config at batch 32 trains 1.24× faster on 2 replicas × 1 thread than on 1 replica
 * × 2 threads. Smaller shards are not measured and stay single-process (so do the tests' tiny batches).
 */
export const MIN_ROWS_PER_REPLICA = 16;

/** The backends whose kernels run on one thread per replica, where more replicas use more cores. */
const REPLICA_BACKENDS: ReadonlySet<string> = new Set(['wasm', 'cpu']);

/**
 * How many replicas a run uses. A count is taken as given (never more replicas than rows). 'auto' (and
 * unset: the default) takes as many cores as give every replica MIN_ROWS_PER_REPLICA rows, on the
 * backends that benefit (wasm, cpu) when training runs through the towers; tfjs-node already uses every
 * core in its kernels, and the frozen-feature cache trains only the heads, where a step is too small to split.
 */
export function resolveWorkers(setting: WorkersSetting | undefined, o: { backend: string; useCache: boolean; batchSize: number; cores?: number }): number {
  const cores = o.cores ?? availableParallelism();
  if (typeof setting === 'number') return Math.max(1, Math.min(setting, o.batchSize));
  if (o.useCache || !REPLICA_BACKENDS.has(o.backend)) return 1;
  return Math.max(1, Math.min(cores, Math.floor(o.batchSize / MIN_ROWS_PER_REPLICA)));
}

/**
 * wasm threads per replica: the replicas already fill the cores, and wasm threads on top of them would
 * oversubscribe them (measured: 2 replicas with main on 2 threads cost 35 % more CPU per step). One
 * replica: undefined, initBackend's default (every core).
 */
export function threadsPerReplica(replicas: number, cores = availableParallelism()): number | undefined {
  return replicas > 1 ? Math.max(1, Math.floor(cores / replicas)) : undefined;
}

/**
 * Fewest inputs for which 'auto' starts an EmbedPool for a forward-only command: each worker loads tfjs
 * and builds its copy of the model first (bench `infer-parallel` reports it as startMs), which a few
 * batches must repay. Below it, one replica with every wasm thread.
 */
export const MIN_INFERENCE_ROWS = 256;

/**
 * Replicas of a forward-only pass (EmbedPool: `clip embed`, zero-shot, the feature cache) over `rows`
 * inputs in batches of `batchSize`. A count is taken as given (never more replicas than a batch has
 * rows). 'auto' (and unset): as resolveWorkers on the backends that benefit, when there are enough inputs.
 */
export function inferenceReplicas(setting: WorkersSetting | undefined, o: { backend: string; rows: number; batchSize: number; cores?: number }): number {
  const batch = Math.max(1, Math.min(o.batchSize, o.rows));
  if (typeof setting === 'number') return Math.max(1, Math.min(setting, batch));
  if (o.rows < MIN_INFERENCE_ROWS) return 1;
  return resolveWorkers('auto', { backend: o.backend, useCache: false, batchSize: batch, ...(o.cores === undefined ? {} : { cores: o.cores }) });
}

/**
 * The backend a run will get, as far as replica planning needs it before the backend starts (its
 * threads cannot change afterwards): a named one as is, 'auto' as wasm — tfjs-node, if 'auto' finds it,
 * ignores the thread count, and resolving with the started backend then gives one replica.
 */
export function assumedBackend(requested: string | undefined, envBackend = process.env.CLIP_BACKEND): string {
  const named = requested === undefined || requested === 'auto' ? (envBackend ?? 'auto') : requested;
  return named === 'auto' ? 'wasm' : named;
}
