import { z } from 'zod';
import { initBackend, type BackendInfo, type BackendName, type CLIPModel } from '@clip-ts/core';
import { assumedBackend, EmbedPool, inferenceReplicas, threadsPerReplica, type WorkersSetting } from '@clip-ts/train';
import { zodArg } from './options.js';

/** `--workers N|auto` of the forward-only commands. */
export const workersArg = zodArg<WorkersSetting>('--workers', z.union([z.literal('auto'), z.coerce.number().int('must be an integer').positive('must be positive').max(256)]));

export const WORKERS_HELP = "replicas (threads) that split each batch: a count or 'auto' (default: every core on wasm/cpu for ≥ 256 inputs, each with 1 wasm thread)";

/**
 * Start the backend of a forward-only command and decide its replicas before it starts (each replica gets
 * cores / replicas wasm threads; the thread count is fixed once the backend runs). --threads without
 * --workers keeps one replica with those threads.
 */
export async function startInference(o: { backend?: BackendName | undefined; threads?: number | undefined; workers?: WorkersSetting | undefined; rows: number; batchSize: number }): Promise<{ info: BackendInfo; replicas: number }> {
  const setting = o.workers ?? (o.threads === undefined ? 'auto' : 1);
  const planned = inferenceReplicas(setting, { backend: assumedBackend(o.backend), rows: o.rows, batchSize: o.batchSize });
  const info = await initBackend(o.backend, { threads: o.threads ?? threadsPerReplica(planned) });
  const replicas = Math.min(planned, inferenceReplicas(setting, { backend: info.name, rows: o.rows, batchSize: o.batchSize }));
  return { info, replicas };
}

/** Run `fn` with an EmbedPool of `model` when `replicas` > 1 (closed afterwards), else with undefined. */
export async function withEmbedPool<T>(model: CLIPModel, replicas: number, fn: (pool: EmbedPool | undefined) => Promise<T>): Promise<T> {
  if (replicas < 2) return fn(undefined);
  const pool = await EmbedPool.start(model, { replicas });
  try {
    return await fn(pool);
  } finally {
    pool.close();
  }
}
