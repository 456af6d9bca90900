import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError, initBackend, Rng, type CaptionTokenizer, type ImageProcessor } from '@clip-ts/core';
import { writeFileAtomic } from '@clip-ts/core/node';
import { ClipImageProcessor } from '@clip-ts/encoders/node'; // importing also registers the vit / distilbert towers
import { CaptionLoader, type CaptionBatch } from '@clip-ts/data';
import { cachedFeatureTask, CachedFeatureSource, loadOrComputeFeatures, towerFingerprint, type CachedFeatures, type FeatureBatch } from '../cache/feature-cache.js';
import {
  EarlyStopping,
  HistoryLogger,
  LossPlot,
  ModelCheckpoint,
  NanGuard,
  ProgressBar,
  ReduceLROnPlateau,
  type Callback,
} from '../callbacks/index.js';
import { parseExperimentConfig } from '../config/load.js';
import type { ExperimentConfig, ExperimentConfigInput } from '../config/schema.js';
import { AdamOptimizer } from '../optim/adam.js';
import { buildParamGroups } from '../optim/param-groups.js';
import { TrainingError } from '../trainer/errors.js';
import { existingCheckpointDir, readRunState, restoreTrainer } from '../trainer/run-state.js';
import { restoreRngStates, rngStates } from '../trainer/rng-state.js';
import { saveCheckpointAssets, TOKENIZER_FILE } from './checkpoint-assets.js';
import { evaluateSplit, Trainer } from '../trainer/trainer.js';
import type { BatchSource, TrainTask } from '../trainer/types.js';
import { loadExperimentData, loadPreprocessing, type ExperimentData } from './data.js';
import { applyFreeze, buildModel, clipModelTask } from './model.js';
import { loadModelDir, pretrainedAssets, saveModelDir } from './pretrained.js';
import { splitMetricsFromLogs, type Results } from './results.js';
import { evaluateRetrieval } from './retrieval.js';

export const RUN_CONFIG_FILE = 'config.json';
export const RESULTS_FILE = 'results.json';

export interface RunExperimentOptions {
  /** Run directory; default config.output.runDir. */
  runDir?: string;
  /** Progress and logs go to io.stderr; nothing is written to stdout. */
  io: { stdout: (text: string) => void; stderr: (text: string) => void };
  /** Abort = Ctrl-C: finish the current step, save a resumable last/ checkpoint, return `interrupted`. */
  signal?: AbortSignal;
  /** Continue the run in runDir from its last/ checkpoint (weights, optimizer, schedule, epoch, history). */
  resume?: boolean;
  /** A live progress bar is drawn on this stream when it is a TTY (default: one line per epoch). */
  tty?: NodeJS.WriteStream;
  /** Preprocessing given in code instead of data.tokenizer / data.imageProcessor (e.g. the demo's). */
  tokenizer?: CaptionTokenizer;
  imageProcessor?: ImageProcessor;
}

/** Keys whose change makes a checkpoint unusable for resuming (what was trained, on what, how). */
const RESUME_KEYS = ['seed', 'model', 'data', 'optim'] as const;

/** A loader's batches with the caption picks of one fixed epoch (validation/test see the same pairs every time). */
function fixedEpoch(loader: CaptionLoader): BatchSource<CaptionBatch> {
  return { batches: (_epoch, options) => loader.batches(0, options) };
}

/**
 * Train and evaluate one experiment end to end, writing the run directory: config.json (resolved config),
 * best/ and last/ checkpoints (last/ resumable), history.csv / history.jsonl, loss.svg / loss.png,
 * results.json. Returns the results (also when interrupted, with `interrupted: true` and no test metrics).
 */
export async function runExperiment(input: ExperimentConfig | ExperimentConfigInput, options: RunExperimentOptions): Promise<Results> {
  const started = performance.now();
  const config = parseExperimentConfig(input);
  const runDir = options.runDir ?? config.output.runDir;
  const log = (line: string) => options.io.stderr(`${line}\n`);
  const backend = await initBackend(config.backend);
  log(`backend: ${backend.name}`);

  const lastDir = path.join(runDir, 'last');
  const bestDir = path.join(runDir, 'best');
  let resumeFrom: string | undefined;
  if (options.resume) {
    resumeFrom = await existingCheckpointDir(lastDir);
    if (!resumeFrom) throw new TrainingError(`cannot resume: ${runDir} has no last/ checkpoint (nothing to resume; start a new run instead)`);
    await readRunState(resumeFrom); // fails early, with the reason, on a directory without trainer state
    await checkResumeCompatible(runDir, config);
  } else if ((await existingCheckpointDir(lastDir)) || (await existingCheckpointDir(bestDir))) {
    throw new TrainingError(`${runDir} already holds a run (best/ or last/); pass resume to continue it, or choose another output.runDir`);
  }
  await fs.mkdir(runDir, { recursive: true });
  if (!resumeFrom) await writeFileAtomic(path.join(runDir, RUN_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);

  const pretrained = 'pretrained' in config.model;
  const pre = options.tokenizer && options.imageProcessor && !pretrained
    ? { tokenizer: options.tokenizer, imageProcessor: options.imageProcessor, tokenizerDir: undefined, hf: false }
    : await loadPreprocessing(config.data, config.model);
  const tokenizer = options.tokenizer ?? pre.tokenizer;
  const imageProcessor = options.imageProcessor ?? pre.imageProcessor;
  const hfAssets = pre.hf && pre.tokenizerDir !== undefined ? pretrainedAssets(pre.tokenizerDir, imageProcessor) : undefined;
  const data = await loadExperimentData(config.data);
  log(`data: ${config.data.dataset.kind} — train ${data.train.length}, val ${data.val.length}, test ${data.test.length} images`);

  const seeds = new Rng(config.seed ^ 0x7a11);
  const loaderSeed = seeds.nextSeed() >>> 1;
  const model = resumeFrom ? await loadModelDir(resumeFrom, { seed: config.seed }) : await buildModel(config);
  const owned: Array<{ dispose(): void }> = [model];
  try {
    const frozen = applyFreeze(model, config.model.freeze);
    const evalBatch = config.data.evalBatchSize ?? config.data.batchSize;
    const loader = (ds: typeof data.train, train: boolean) =>
      new CaptionLoader(ds, {
        batchSize: train ? config.data.batchSize : evalBatch,
        imageProcessor,
        tokenizer,
        maxLength: config.data.maxLength,
        shuffle: train,
        seed: loaderSeed,
        captionPick: config.data.captionPick,
        cache: config.data.cacheImages,
      });
    const trainLoader = loader(data.train, true);
    const valLoader = loader(data.val, false);

    const useCache = frozen.visionFrozen && frozen.textFrozen && config.featureCache.enabled === 'auto';
    let setup: { task: TrainTask<CaptionBatch>; train: BatchSource<CaptionBatch>; val: BatchSource<CaptionBatch> } | { task: TrainTask<FeatureBatch>; train: BatchSource<FeatureBatch>; val: BatchSource<FeatureBatch> };
    if (useCache) {
      const dir = config.featureCache.dir ?? path.join(runDir, 'feature-cache');
      const towers = await towerFingerprint(model);
      const features = async (ds: typeof data.train): Promise<CachedFeatures> => {
        const f = await loadOrComputeFeatures({ model, dataset: ds, tokenizer, imageProcessor, maxLength: config.data.maxLength, dir, batchSize: evalBatch }, towers);
        owned.push(f);
        log(`feature cache: ${ds.split} ${f.fromDisk ? 'read from' : 'computed into'} ${dir}`);
        return f;
      };
      const trainF = await features(data.train);
      const valF = await features(data.val);
      setup = { task: cachedFeatureTask(model), train: new CachedFeatureSource(trainF, trainLoader), val: new CachedFeatureSource(valF, valLoader, 0) };
    } else {
      setup = { task: clipModelTask(model, { vision: frozen.visionFrozen, text: frozen.textFrozen }), train: trainLoader, val: fixedEpoch(valLoader) };
    }

    const optimizer = new AdamOptimizer(
      buildParamGroups(frozen.trainable, { lr: config.optim.lr, towerLr: config.optim.towerLr, weightDecay: config.optim.weightDecay }),
      { kind: config.optim.name, beta1: config.optim.beta1, beta2: config.optim.beta2, eps: config.optim.eps },
    );
    owned.push(optimizer);
    const sched = config.schedule;
    const earlyStopping = sched.earlyStopping ? new EarlyStopping({ patience: sched.earlyStopping.patience, minDelta: sched.earlyStopping.minDelta, restoreBestWeights: false }) : undefined;
    // The dropout generators' states travel with last/, so a resumed run draws the same masks.
    const checkpoint = new ModelCheckpoint({
      dir: runDir,
      extraState: () => ({ rngs: rngStates(model) }),
      // An HF CLIP's tokenizer and preprocessor files are written with its weights (saveModelDir).
      writeAssets: hfAssets ? undefined : await checkpointAssetsWriter({ ...config.data, tokenizer: config.data.tokenizer ?? pre.tokenizerDir }, imageProcessor),
    });
    const callbacks: Callback[] = [
      new NanGuard(),
      ...(sched.reduceLROnPlateau ? [new ReduceLROnPlateau(sched.reduceLROnPlateau)] : []),
      ...(earlyStopping ? [earlyStopping] : []),
      checkpoint,
      new HistoryLogger(runDir),
      new LossPlot(runDir),
      new ProgressBar({ epochs: sched.epochs, batchesPerEpoch: trainLoader.numBatches, write: options.io.stderr, tty: options.tty }),
    ];
    log(
      `model: ${model.namedVariables().length} weights, ${frozen.trainable.length} training` +
        `${useCache ? ' (frozen towers: training on cached features)' : ''}; batch ${config.data.batchSize}, ${trainLoader.numBatches} steps/epoch`,
    );
    const run = async <B>(s: { task: TrainTask<B>; train: BatchSource<B>; val: BatchSource<B> }) => {
      const trainer = new Trainer({
        // CLIPModel is browser-safe and has no save(dir); directories are written by @clip-ts/core/node.
        model: { namedVariables: () => model.namedVariables(), save: (dir: string) => saveModelDir(model, dir, hfAssets) },
        task: s.task,
        optimizer,
        callbacks,
        clipGradNorm: config.optim.clipGradNorm,
        accumulation: config.optim.accumulation,
        topK: config.eval.topK,
        signal: options.signal,
      });
      if (resumeFrom) {
        const state = await restoreTrainer(resumeFrom, trainer);
        const rngs = state.extra.rngs;
        if (Array.isArray(rngs) && rngs.every((x) => typeof x === 'number')) restoreRngStates(model, rngs, resumeFrom);
        log(`resumed from ${resumeFrom} at epoch ${trainer.currentEpoch + 1}`);
      }
      const done = earlyStopping?.stoppedEpoch != null;
      const res = done ? { history: trainer.history, interrupted: false, epochsCompleted: trainer.currentEpoch } : await trainer.fit({ train: s.train, val: s.val, epochs: sched.epochs });
      if (res.interrupted) {
        await checkpoint.writeLast();
        log(`interrupted: resumable checkpoint in ${lastDir}`);
      }
      return res;
    };
    const fit = useCache ? await run(setup as Extract<typeof setup, { task: TrainTask<FeatureBatch> }>) : await run(setup as Extract<typeof setup, { task: TrainTask<CaptionBatch> }>);

    const bestEpochIdx = checkpoint.bestEpoch;
    const bestLogs = fit.history[bestEpochIdx];
    const results: Results = {
      runDir,
      backend: backend.name,
      seed: config.seed,
      epochs: fit.epochsCompleted,
      bestEpoch: bestEpochIdx + 1,
      stoppedEarly: earlyStopping?.stoppedEpoch != null,
      interrupted: fit.interrupted,
      featureCache: useCache,
      trainBatchSize: config.data.batchSize,
      val: bestLogs && bestLogs.val_loss !== undefined ? splitMetricsFromLogs(bestLogs, 'val_') : null,
      test: null,
      history: fit.history,
      wallSeconds: 0,
    };
    if (!fit.interrupted) results.test = await testBest(bestDir, config, data, { tokenizer, imageProcessor, seed: config.seed, evalBatch, loaderSeed, log });
    results.wallSeconds = (performance.now() - started) / 1000;
    await writeFileAtomic(path.join(runDir, RESULTS_FILE), `${JSON.stringify(results, null, 2)}\n`);
    return results;
  } finally {
    for (const o of owned.reverse()) o.dispose();
  }
}

/** Test metrics of the best checkpoint: loss and in-batch top-k on the test split, then full-split retrieval. */
async function testBest(
  bestDir: string,
  config: ExperimentConfig,
  data: ExperimentData,
  o: { tokenizer: CaptionTokenizer; imageProcessor: ImageProcessor; seed: number; evalBatch: number; loaderSeed: number; log: (l: string) => void },
): Promise<Results['test']> {
  const dir = await existingCheckpointDir(bestDir);
  if (!dir) throw new TrainingError(`${bestDir}: no best checkpoint was written (did every epoch fail validation?)`);
  const best = await loadModelDir(dir, { seed: o.seed });
  try {
    const testLoader = new CaptionLoader(data.test, {
      batchSize: o.evalBatch,
      imageProcessor: o.imageProcessor,
      tokenizer: o.tokenizer,
      maxLength: config.data.maxLength,
      seed: o.loaderSeed,
      captionPick: config.data.captionPick,
    });
    const logs = await evaluateSplit(clipModelTask(best, { vision: true, text: true }), fixedEpoch(testLoader), { topK: config.eval.topK });
    const metrics = splitMetricsFromLogs(logs, '');
    const retrieval = await evaluateRetrieval({
      model: best,
      dataset: data.test,
      tokenizer: o.tokenizer,
      imageProcessor: o.imageProcessor,
      maxLength: config.data.maxLength,
      batchSize: o.evalBatch,
      ks: config.eval.recallK,
    });
    o.log(`test: loss ${metrics.loss.toFixed(4)}, ${Object.entries(metrics.topK).map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`).join(', ')}`);
    return { ...metrics, retrieval };
  } finally {
    best.dispose();
  }
}

/** A resumed run must train the same thing the same way: compare the saved config's resume-relevant keys. */
async function checkResumeCompatible(runDir: string, config: ExperimentConfig): Promise<void> {
  const file = path.join(runDir, RUN_CONFIG_FILE);
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new TrainingError(`cannot resume ${runDir}: ${file} is missing or unreadable (${(err as Error).message})`);
  }
  const diffs: string[] = [];
  const walk = (a: unknown, b: unknown, at: string) => {
    if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) diffs.push(`${at}: checkpoint has ${JSON.stringify(a)}, config has ${JSON.stringify(b)}`);
  };
  for (const k of RESUME_KEYS) walk(saved[k], config[k], k);
  if (diffs.length > 0) {
    throw new ConfigError(`cannot resume ${runDir}: the checkpoint comes from an incompatible config:\n${diffs.join('\n')}`);
  }
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
