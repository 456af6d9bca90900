import * as path from 'node:path';
import { describeBackend, initBackend, Rng, type CaptionTokenizer, type ImageProcessor } from '@clip-ts/core';
import { parseExperimentConfig } from '../config/load.js';
import type { ExperimentConfig, ExperimentConfigInput } from '../config/schema.js';
import { loadExperimentData, loadPreprocessing, type ExperimentData } from './data.js';
import { pretrainedAssets, type HFCLIPAssets } from './pretrained.js';
import { threadsPerReplica } from '../parallel/workers.js';
import { plannedReplicas } from './replicas.js';

/** What every step of a run reads: the resolved config, where the run lives, how to log. */
export interface RunContext {
  config: ExperimentConfig;
  runDir: string;
  lastDir: string;
  bestDir: string;
  backend: string;
  log: (line: string) => void;
  /** performance.now() when the run started (results.json's wallSeconds). */
  started: number;
  /** Seed of the loaders' shuffles and caption picks (see captionPickSeed). */
  loaderSeed: number;
  /** Batch size of validation and test passes. */
  evalBatch: number;
}

/**
 * The seed a run's loaders use for shuffles and caption picks, derived from the experiment seed. `clip
 * eval --seed <run seed>` derives it the same way, so it evaluates the pairs runExperiment tested on.
 */
export function captionPickSeed(runSeed: number): number {
  return new Rng(runSeed ^ 0x7a11).nextSeed() >>> 1;
}

/** Step 1: resolve the config, start the backend. */
export async function prepareRun(
  input: ExperimentConfig | ExperimentConfigInput,
  o: { runDir?: string | undefined; io: { stderr: (text: string) => void } },
): Promise<RunContext> {
  const started = performance.now();
  const config = parseExperimentConfig(input);
  const runDir = o.runDir ?? config.output.runDir;
  const log = (line: string) => o.io.stderr(`${line}\n`);
  // Data-parallel replicas already use the cores: each one's wasm gets the cores left to it.
  const threads = config.threads ?? threadsPerReplica(plannedReplicas(config));
  const backend = await initBackend(config.backend, threads === undefined ? {} : { threads });
  log(describeBackend(backend));
  return {
    config,
    runDir,
    lastDir: path.join(runDir, 'last'),
    bestDir: path.join(runDir, 'best'),
    backend: backend.name,
    log,
    started,
    loaderSeed: captionPickSeed(config.seed),
    evalBatch: config.data.evalBatchSize ?? config.data.batchSize,
  };
}

/** The data and the preprocessing that turns it into tensors. */
export interface RunInputs {
  tokenizer: CaptionTokenizer;
  imageProcessor: ImageProcessor;
  data: ExperimentData;
  /** Where the tokenizer files come from when the config names none (a pretrained repo). */
  tokenizerDir?: string | undefined;
  /** Set when the run starts from an HF CLIP: its checkpoints are saved in that layout, with these files. */
  hfAssets?: HFCLIPAssets | undefined;
}

/** Step 3: preprocessing (given in code or read from the config) and the three splits. */
export async function loadInputs(run: RunContext, given: { tokenizer?: CaptionTokenizer | undefined; imageProcessor?: ImageProcessor | undefined }): Promise<RunInputs> {
  const { config } = run;
  const pretrained = 'pretrained' in config.model;
  const pre = given.tokenizer && given.imageProcessor && !pretrained
    ? { tokenizer: given.tokenizer, imageProcessor: given.imageProcessor, tokenizerDir: undefined, hf: false }
    : await loadPreprocessing(config.data, config.model);
  const imageProcessor = given.imageProcessor ?? pre.imageProcessor;
  const hfAssets = pre.hf && pre.tokenizerDir !== undefined ? pretrainedAssets(pre.tokenizerDir, imageProcessor) : undefined;
  const data = await loadExperimentData(config.data);
  run.log(`data: ${config.data.dataset.kind} — train ${data.train.length}, val ${data.val.length}, test ${data.test.length} images`);
  return { tokenizer: given.tokenizer ?? pre.tokenizer, imageProcessor, data, tokenizerDir: pre.tokenizerDir, hfAssets };
}
