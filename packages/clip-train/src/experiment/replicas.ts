import type { CLIPModel } from '@clip-ts/core';
import type { ExperimentConfig } from '../config/schema.js';
import { assumedBackend, inferenceReplicas, MIN_INFERENCE_ROWS, resolveWorkers } from '../parallel/workers.js';

/**
 * Whether the run will train on cached tower features (buildPipeline's condition, read from the config:
 * both towers frozen, the cache allowed, no augmentation). A partly frozen tower counts as trained.
 */
export function cacheExpected(config: ExperimentConfig): boolean {
  const f = config.model.freeze;
  const frozen = f === 'towers' || (typeof f === 'object' && f.vision === 'all' && f.text === 'all');
  return frozen && config.featureCache.enabled === 'auto' && config.data.augment === undefined;
}

/**
 * The replica count a run is planned for, before the backend starts: setup.ts needs it to give each
 * replica its share of the wasm threads, and the backend's threads cannot change once it runs. The
 * backend is the one the config (or $CLIP_BACKEND) names, 'auto' taken as wasm (assumedBackend). Distillation runs its whole batch under
 * one tape (one replica). buildPipeline resolves the final count with the backend actually started.
 */
export function plannedReplicas(config: ExperimentConfig, envBackend = process.env.CLIP_BACKEND): number {
  if (config.distill) return 1;
  const backend = assumedBackend(config.backend, envBackend);
  if (cacheExpected(config)) return cacheReplicas(config, backend);
  return resolveWorkers(config.training.workers, { backend, useCache: false, batchSize: config.data.batchSize });
}

/**
 * Replicas that build the frozen-feature cache (EmbedPool; training on the cached features stays on the
 * main thread, a heads-only step being too small to split). The training split's size is known before
 * loading only for the synthetic shapes set; other datasets are taken as large enough for a pool.
 */
export function cacheReplicas(config: ExperimentConfig, backend: string): number {
  const ds = config.data.dataset;
  const size = ds.kind === 'shapes' ? ds.options.trainSize : undefined;
  const rows = typeof size === 'number' ? size : MIN_INFERENCE_ROWS;
  return inferenceReplicas(config.training.workers, { backend, rows, batchSize: config.data.evalBatchSize ?? config.data.batchSize });
}

/**
 * The trained tower whose forward pass uses batch statistics (BatchNorm's running_mean / running_var
 * buffers, HF names), if any: replicas would normalise each shard by its own statistics, so their
 * gradients would no longer add up to the whole batch's.
 */
export function batchNormTower(model: CLIPModel, frozen: { vision: boolean; text: boolean }): 'vision' | 'text' | undefined {
  for (const { name } of model.namedVariables()) {
    if (!/\.running_(mean|var)$/.test(name)) continue;
    const tower = name.startsWith('vision_model.') ? 'vision' : 'text';
    if (!frozen[tower]) return tower;
  }
  return undefined;
}
