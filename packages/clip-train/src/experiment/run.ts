import * as path from 'node:path';
import type { CaptionTokenizer, ImageProcessor } from '@clip-ts/core';
import { writeFileAtomic } from '@clip-ts/core/node';
import type { ExperimentConfig, ExperimentConfigInput } from '../config/schema.js';
import { evaluateBest } from './evaluate-best.js';
import { RESULTS_FILE } from './files.js';
import { fit } from './fit.js';
import { checkResume } from './resume-check.js';
import { splitMetricsFromLogs, type Results } from './results.js';
import { loadInputs, prepareRun } from './setup.js';
import { buildTraining } from './training.js';

export { RESULTS_FILE, RUN_CONFIG_FILE } from './files.js';
export { captionPickSeed } from './setup.js';

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

/**
 * Train and evaluate one experiment end to end, writing the run directory: config.json (resolved config),
 * best/ and last/ checkpoints (last/ resumable), history.csv / history.jsonl, loss.svg / loss.png,
 * results.json. Returns the results (also when interrupted, with `interrupted: true` and no test metrics).
 */
export async function runExperiment(input: ExperimentConfig | ExperimentConfigInput, options: RunExperimentOptions): Promise<Results> {
  const run = await prepareRun(input, options);
  const resumeFrom = await checkResume(run, options.resume);
  const inputs = await loadInputs(run, options);
  const training = await buildTraining(run, inputs, resumeFrom, { stderr: options.io.stderr, tty: options.tty });
  try {
    const result = await training.withPipeline((pipeline) => fit(run, training, pipeline, { resumeFrom, signal: options.signal }));
    const bestLogs = result.history[training.checkpoint.bestEpoch];
    const results: Results = {
      runDir: run.runDir,
      backend: run.backend,
      seed: run.config.seed,
      epochs: result.epochsCompleted,
      bestEpoch: training.checkpoint.bestEpoch + 1,
      stoppedEarly: training.earlyStopping?.stoppedEpoch != null,
      interrupted: result.interrupted,
      featureCache: training.useCache,
      trainBatchSize: run.config.data.batchSize,
      val: bestLogs && bestLogs.val_loss !== undefined ? splitMetricsFromLogs(bestLogs, 'val_') : null,
      ...(bestLogs?.ema_val_loss !== undefined ? { emaVal: splitMetricsFromLogs(bestLogs, 'ema_val_') } : {}),
      test: result.interrupted ? null : await evaluateBest(run, inputs),
      history: result.history,
      wallSeconds: 0,
    };
    results.wallSeconds = (performance.now() - run.started) / 1000;
    await writeFileAtomic(path.join(run.runDir, RESULTS_FILE), `${JSON.stringify(results, null, 2)}\n`);
    return results;
  } finally {
    training.dispose();
  }
}
