import type { ExperimentConfig } from '../config/schema.js';
import { resolveWorkers } from '../parallel/workers.js';

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
 * backend is assumed to be wasm unless the config (or $CLIP_BACKEND) names tfjs-node: 'auto' falls back
 * to wasm here, and tfjs-node ignores the thread count anyway. Distillation runs its whole batch under
 * one tape (one replica). buildPipeline resolves the final count with the backend actually started.
 */
export function plannedReplicas(config: ExperimentConfig, envBackend = process.env.CLIP_BACKEND): number {
  if (config.distill) return 1;
  const named = config.backend === 'auto' ? (envBackend ?? 'auto') : config.backend;
  const backend = named === 'cpu' ? 'cpu' : named.startsWith('tensorflow') ? named : 'wasm';
  return resolveWorkers(config.training.workers, { backend, useCache: cacheExpected(config), batchSize: config.data.batchSize });
}
