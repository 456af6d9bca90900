import * as path from 'node:path';
import type { CLIPModel } from '@clip-ts/core';
import { CaptionLoader, type CaptionBatch } from '@clip-ts/data';
import { cachedFeatureTask, CachedFeatureSource, loadOrComputeFeatures, towerFingerprint, type CachedFeatures, type FeatureBatch } from '../cache/feature-cache.js';
import { distillTask, type TeacherEmbeddings } from '../distill/index.js';
import type { BatchSource, TrainTask } from '../trainer/types.js';
import { resolveMicroBatch } from '../step/micro-batch-config.js';
import { setGradientCheckpointing } from '../step/checkpointing.js';
import { clipModelTask, trainingEmbeddings, type FreezeResult } from './model.js';
import { ReplicaPool } from '../parallel/pool.js';
import { parallelModelTask } from '../parallel/task.js';
import { resolveWorkers } from '../parallel/workers.js';
import { batchNormTower, cacheReplicas, plannedReplicas } from './replicas.js';
import type { MicroBatchChoice } from '../step/micro-batch-auto.js';
import type { RunContext, RunInputs } from './setup.js';

/** What the Trainer runs on: a task and its train / validation batches, all of one batch type. */
export interface Pipeline<B> {
  task: TrainTask<B>;
  train: BatchSource<B>;
  val: BatchSource<B>;
}

/**
 * A pipeline whose batch type is known only inside `use` (raw caption batches, or cached tower
 * features): callers write one generic function instead of narrowing a union with casts.
 */
export type AnyPipeline = <R>(use: <B>(pipeline: Pipeline<B>) => Promise<R>) => Promise<R>;

/** A loader's batches with the caption picks of one fixed epoch (validation/test see the same pairs every time). */
export function fixedEpoch(loader: CaptionLoader): BatchSource<CaptionBatch> {
  return { batches: (_epoch, options) => loader.batches(0, options) };
}

/** The eval-mode loader of a split: no shuffle, the run's caption picks. */
export function evalLoader(run: RunContext, inputs: RunInputs, dataset: RunInputs['data']['test'], cache?: boolean): CaptionLoader {
  return new CaptionLoader(dataset, {
    batchSize: run.evalBatch,
    imageProcessor: inputs.imageProcessor,
    tokenizer: inputs.tokenizer,
    maxLength: run.config.data.maxLength,
    seed: run.loaderSeed,
    captionPick: run.config.data.captionPick,
    ...(cache === undefined ? {} : { cache }),
  });
}

/** distill: the teacher's embeddings (borrowed) and the weight of its term. */
export interface PipelineDistill {
  teacher: TeacherEmbeddings;
  weight: number;
}

/**
 * With both towers frozen (and the cache allowed) training runs on cached tower features; otherwise on
 * caption batches through the towers. `own` receives the cached features, which the run disposes. With
 * `distill` the training loss gains the teacher's term (validation keeps the plain loss).
 */
export async function buildPipeline(
  run: RunContext,
  inputs: RunInputs,
  model: CLIPModel,
  frozen: FreezeResult,
  trainLoader: CaptionLoader,
  own: (d: { dispose(): void }) => void,
  distill?: PipelineDistill,
): Promise<{ useCache: boolean; withPipeline: AnyPipeline; stateOnHost: boolean }> {
  const { config } = run;
  const valLoader = evalLoader(run, inputs, inputs.data.val, config.data.cacheImages);
  // Cached image features would freeze one view of each image: augmentation needs the towers every step.
  const cacheAllowed = frozen.visionFrozen && frozen.textFrozen && config.featureCache.enabled === 'auto';
  const useCache = cacheAllowed && !trainLoader.augmented;
  if (cacheAllowed && trainLoader.augmented) run.log('feature cache: off (data.augment changes the training images every epoch)');
  if (!useCache) {
    const towers = { vision: frozen.visionFrozen, text: frozen.textFrozen };
    const trained = (['vision', 'text'] as const).filter((t) => !towers[t]);
    // Set explicitly, it holds for every step kind; unset, the micro-batch choice below may turn it on.
    if (config.training.gradientCheckpointing === true) setGradientCheckpointing(model, trained, true);
    let task: TrainTask<CaptionBatch>;
    let stateOnHost = config.optim.stateOnHost === true;
    if (distill) {
      // The teacher's term needs the whole batch's student logits under one tape: no replicas or micro-batches.
      const plain = clipModelTask(model, towers, config.targets);
      task = distillTask(plain, {
        model,
        ...distill,
        targets: config.targets,
        embed: (b) => trainingEmbeddings(model, towers, b),
      });
      run.log('distillation: whole-batch step (training.workers and training.microBatch do not apply)');
    } else {
      const micro = resolveMicroBatch(config, model, towers, run.backend);
      stateOnHost = micro.stateOnHost ?? stateOnHost;
      const replicas = replicaCount(run, useCache, micro, batchNormTower(model, towers));
      if (replicas > 1) {
        // Each replica runs its whole shard under one tape: micro-batching is not combined with replicas
        // yet, so every shard's activations must fit in memory.
        const pool = await ReplicaPool.start(model, { replicas, maxBatch: config.data.batchSize, frozen: towers });
        own(pool);
        task = parallelModelTask(model, towers, pool, config.targets);
        run.log(`data-parallel: ${replicas} replicas (main thread + ${replicas - 1} workers)`);
      } else {
        run.log(`micro-batch: ${micro.reason}`);
        if (micro.gradientCheckpointing) {
          const on = setGradientCheckpointing(model, trained, true);
          if (on.length < trained.length) run.log(`gradient checkpointing: only the ${on.join(' and ') || 'no'} tower supports it`);
        }
        task = clipModelTask(model, towers, config.targets, micro.microBatch < config.data.batchSize ? { microBatch: micro.microBatch } : {});
      }
    }
    const pipeline: Pipeline<CaptionBatch> = {
      task,
      train: trainLoader,
      val: fixedEpoch(valLoader),
    };
    return { useCache, withPipeline: (use) => use(pipeline), stateOnHost };
  }
  const dir = config.featureCache.dir ?? path.join(run.runDir, 'feature-cache');
  const towers = await towerFingerprint(model);
  // Never more replicas than prepareRun split the wasm threads for; tfjs-node resolves to one.
  const buildReplicas = Math.min(plannedReplicas(config), cacheReplicas(config, run.backend));
  const features = async (ds: RunInputs['data']['train']): Promise<CachedFeatures> => {
    const f = await loadOrComputeFeatures(
      { model, dataset: ds, tokenizer: inputs.tokenizer, imageProcessor: inputs.imageProcessor, maxLength: config.data.maxLength, dir, batchSize: run.evalBatch, replicas: buildReplicas },
      towers,
    );
    own(f);
    run.log(`feature cache: ${ds.split} ${f.fromDisk ? 'read from' : 'computed into'} ${dir}`);
    return f;
  };
  const trainF = await features(inputs.data.train);
  const valF = await features(inputs.data.val);
  const task = cachedFeatureTask(model, config.targets);
  const embed = (b: FeatureBatch) => ({ img: model.projectImageFeatures(b.imageFeatures, { training: true }), txt: model.projectTextFeatures(b.textFeatures, { training: true }) });
  const pipeline = { task: distill ? distillTask(task, { model, ...distill, targets: config.targets, embed }) : task, train: new CachedFeatureSource(trainF, trainLoader), val: new CachedFeatureSource(valF, valLoader, 0) };
  return { useCache, withPipeline: (use) => use(pipeline), stateOnHost: config.optim.stateOnHost === true };
}

/**
 * Replicas of a run through the towers. A count is taken as given. 'auto' never exceeds the count
 * prepareRun gave the wasm threads for (so replicas never oversubscribe the cores), and keeps one replica
 * when a shard would not fit in memory whole (micro-batching is not combined with replicas): the
 * reference's towers at batch 32 need 5-row chunks on wasm.
 */
function replicaCount(run: RunContext, useCache: boolean, micro: MicroBatchChoice, batchNorm: string | undefined): number {
  const { config } = run;
  const setting = config.training.workers;
  const resolved = resolveWorkers(setting, { backend: run.backend, useCache, batchSize: config.data.batchSize });
  if (typeof setting === 'number' || resolved === 1) return resolved;
  if (batchNorm) {
    run.log(`data-parallel: off (the ${batchNorm} tower trains batch-norm statistics, which replicas would take per shard instead of per batch)`);
    return 1;
  }
  const replicas = Math.min(resolved, plannedReplicas(config));
  if (replicas > 1 && (micro.gradientCheckpointing || micro.microBatch < Math.ceil(config.data.batchSize / replicas))) {
    run.log(`data-parallel: off (a shard of ${Math.ceil(config.data.batchSize / replicas)} rows would need ${micro.reason}); training.workers: 1 gives the one replica every wasm thread`);
    return 1;
  }
  return replicas;
}

