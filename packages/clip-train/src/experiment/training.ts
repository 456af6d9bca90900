import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError, type CLIPModel, type ImageProcessor } from '@clip-ts/core';
import { ClipImageProcessor } from '@clip-ts/encoders/node'; // importing also registers the vit / distilbert towers
import { CaptionLoader } from '@clip-ts/data';
import {
  EarlyStopping,
  HistoryLogger,
  LossPlot,
  ModelCheckpoint,
  NanGuard,
  ProgressBar,
  ReduceLROnPlateau,
  WarmupCosine,
  type Callback,
} from '../callbacks/index.js';
import type { ExperimentConfig } from '../config/schema.js';
import type { Optimizer } from '../optim/optimizer.js';
import { rngStates } from '../trainer/rng-state.js';
import type { TrainableModel } from '../trainer/types.js';
import { saveCheckpointAssets, TOKENIZER_FILE } from './checkpoint-assets.js';
import { applyFreeze, applyPatchDropout, buildModel, checkLossType } from './model.js';
import { buildOptimizer } from './optimizer.js';
import { loadTeacherEmbeddings } from '../distill/teacher.js';
import { setupEma, withEmaCheckpoint } from './ema-setup.js';
import { buildPipeline, type AnyPipeline } from './pipeline.js';
import { loadModelDir, saveModelDir } from './pretrained.js';
import type { RunContext, RunInputs } from './setup.js';

/** Everything the fit step needs; `dispose` frees the model, optimizer and cached features. */
export interface Training {
  model: CLIPModel;
  /** What the Trainer saves: the model's weights, written by @clip-ts/core/node (CLIPModel itself is browser-safe). */
  trainable: TrainableModel;
  optimizer: Optimizer;
  callbacks: Callback[];
  checkpoint: ModelCheckpoint;
  earlyStopping: EarlyStopping | undefined;
  useCache: boolean;
  withPipeline: AnyPipeline;
  dispose(): void;
}

/**
 * Step 4: the model (resumed weights or fresh), the frozen parts, the batches it trains on (cached
 * features when both towers are frozen), the optimizer and the callbacks.
 */
export async function buildTraining(run: RunContext, inputs: RunInputs, resumeFrom: string | undefined, io: { stderr: (text: string) => void; tty?: NodeJS.WriteStream | undefined }): Promise<Training> {
  const { config } = run;
  const model = resumeFrom ? await loadModelDir(resumeFrom, { seed: config.seed }) : await buildModel(config);
  const owned: Array<{ dispose(): void }> = [model];
  const dispose = () => {
    for (const o of owned.reverse()) o.dispose();
  };
  try {
    if (resumeFrom) checkLossType(model, config.loss, resumeFrom);
    applyPatchDropout(model, config.model);
    const frozen = applyFreeze(model, config.model.freeze);
    const trainLoader = new CaptionLoader(inputs.data.train, {
      batchSize: config.data.batchSize,
      imageProcessor: inputs.imageProcessor,
      tokenizer: inputs.tokenizer,
      maxLength: config.data.maxLength,
      shuffle: true,
      seed: run.loaderSeed,
      captionPick: config.data.captionPick,
      // Augmented pixels differ every epoch, so only the val/test loaders keep decoded images then.
      cache: config.data.cacheImages && config.data.augment === undefined,
      augment: config.data.augment,
    });
    const cacheDir = config.featureCache.dir ?? path.join(run.runDir, 'feature-cache');
    const distill = config.distill ? { teacher: await loadTeacher(run, inputs, config.distill.teacher, cacheDir), weight: config.distill.weight } : undefined;
    if (distill) owned.push(distill.teacher);
    const { useCache, withPipeline, stateOnHost } = await buildPipeline(run, inputs, model, frozen, trainLoader, (d) => owned.push(d), distill);
    const optimizer = buildOptimizer(config.optim, frozen.trainable, stateOnHost);
    owned.push(optimizer);
    const averaged = config.training.ema
      ? await setupEma(config.training.ema, { trainable: frozen.trainable, resumeFrom, seed: config.seed, topK: config.eval.topK, withPipeline })
      : undefined;
    if (averaged) owned.push(averaged.ema);
    const sched = config.schedule;
    const earlyStopping = sched.earlyStopping ? new EarlyStopping({ patience: sched.earlyStopping.patience, minDelta: sched.earlyStopping.minDelta, restoreBestWeights: false }) : undefined;
    // An HF CLIP's tokenizer and preprocessor files are written with its weights (saveModelDir).
    const assets = inputs.hfAssets ? undefined : await checkpointAssetsWriter({ ...config.data, tokenizer: config.data.tokenizer ?? inputs.tokenizerDir }, inputs.imageProcessor);
    // The dropout generators' states travel with last/, so a resumed run draws the same masks. Best is
    // chosen by the raw weights' val_loss; the average rides along in best/ema and last/ema.
    const checkpoint = new ModelCheckpoint({
      dir: run.runDir,
      extraState: () => ({ rngs: rngStates(model) }),
      writeAssets: averaged ? withEmaCheckpoint(averaged.ema, model, { writeAssets: assets, hfAssets: inputs.hfAssets }) : assets,
    });
    const callbacks: Callback[] = [
      new NanGuard(),
      ...(sched.lr ? [lrSchedule(sched.lr, sched.epochs, Math.ceil(trainLoader.numBatches / config.optim.accumulation))] : []),
      ...(sched.reduceLROnPlateau ? [new ReduceLROnPlateau(sched.reduceLROnPlateau)] : []),
      ...(earlyStopping ? [earlyStopping] : []),
      // Before the checkpoint and the logs: it adds ema_val_* to the epoch logs they save.
      ...(averaged ? [averaged.callback] : []),
      checkpoint,
      new HistoryLogger(run.runDir),
      new LossPlot(run.runDir),
      new ProgressBar({ epochs: sched.epochs, batchesPerEpoch: trainLoader.numBatches, write: io.stderr, tty: io.tty }),
    ];
    run.log(
      `model: ${model.namedVariables().length} weights, ${frozen.trainable.length} training` +
        `${useCache ? ' (frozen towers: training on cached features)' : ''}; batch ${config.data.batchSize}, ${trainLoader.numBatches} steps/epoch`,
    );
    const trainable: TrainableModel = { namedVariables: () => model.namedVariables(), save: (dir) => saveModelDir(model, dir, inputs.hfAssets) };
    return { model, trainable, optimizer, callbacks, checkpoint, earlyStopping, useCache, withPipeline, dispose };
  } catch (err) {
    dispose();
    throw err;
  }
}

/** distill.teacher's embeddings of the training split (computed once, cached beside the run's features). Caller owns. */
async function loadTeacher(run: RunContext, inputs: RunInputs, teacher: string, cacheDir: string) {
  const t = await loadTeacherEmbeddings({ teacher, dataset: inputs.data.train, maxLength: run.config.data.maxLength, cacheDir, batchSize: run.evalBatch, seed: run.config.seed });
  run.log(`distill: teacher ${teacher} — ${t.images.shape[0]} images, ${t.texts.shape[0]} captions ${t.fromDisk ? 'read from' : 'computed into'} ${cacheDir}`);
  return t;
}

/**
 * schedule.lr: the decay ends at the last optimizer step of `epochs` (a trailing partial accumulation
 * still makes a step, hence the ceil). Peaks are the configured LRs, fixed at the first start and carried
 * by the callback's state through resumes.
 */
function lrSchedule(lr: NonNullable<ExperimentConfig['schedule']['lr']>, epochs: number, stepsPerEpoch: number): WarmupCosine {
  const totalSteps = epochs * stepsPerEpoch;
  if (totalSteps <= lr.warmupSteps) {
    throw new ConfigError(`schedule.lr.warmupSteps (${lr.warmupSteps}) must be below the run's ${totalSteps} optimizer steps (${epochs} epochs × ${stepsPerEpoch})`);
  }
  return new WarmupCosine({ warmupSteps: lr.warmupSteps, totalSteps, ...(lr.minLr === undefined ? {} : { minLr: lr.minLr }) });
}

/**
 * Every checkpoint carries the tokenizer and preprocessing it was trained with, so `clip eval`,
 * `clip zeroshot` and `clip embed` can run on best/ or last/ alone.
 */
async function checkpointAssetsWriter(data: ExperimentConfig['data'], imageProcessor: ImageProcessor): Promise<(dir: string) => Promise<void>> {
  if (data.tokenizer === undefined) throw new ConfigError('data.tokenizer: required to write checkpoint assets');
  const isDir = (await fs.stat(data.tokenizer)).isDirectory();
  const tokenizerFile = isDir ? path.join(data.tokenizer, TOKENIZER_FILE) : data.tokenizer;
  const processorOptions = imageProcessor instanceof ClipImageProcessor
    ? imageProcessor.options
    : { height: imageProcessor.height, width: imageProcessor.width };
  return (dir) => saveCheckpointAssets(dir, { tokenizerFile, maxLength: data.maxLength, imageProcessor: processorOptions });
}
