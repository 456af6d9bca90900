import * as path from 'node:path';
import type { Command } from 'commander';
import { applyOverrides, formatResultsTable, parseExperimentConfig, readConfigFile, RUN_CONFIG_FILE, runExperiment, TrainingError } from '@clip-ts/train';
import type { CliIO } from '../cli.js';
import { writeJson } from '../support/format.js';
import { THREADS_HELP, threadsArg } from '../support/options.js';

export interface TrainCommandOptions {
  config?: string;
  set: string[];
  resume?: string;
  json?: boolean;
  threads?: number;
  /** training.workers: data-parallel replicas ('auto' or a count). */
  workers?: string;
}

/**
 * `clip train`: read (or, with --resume alone, take the run's saved) config, apply --set overrides, run the
 * experiment. Ctrl-C or SIGTERM finishes the current step, saves a resumable last/ checkpoint and exits
 * cleanly; a second signal falls through to Node's default (immediate exit).
 */
export async function runTrainCommand(o: TrainCommandOptions, io: CliIO): Promise<void> {
  if (!o.config && !o.resume) throw new TrainingError('clip train needs --config FILE (or --resume RUN_DIR to continue a run)');
  const file = o.config ?? path.join(o.resume as string, RUN_CONFIG_FILE);
  // --workers is shorthand for --set training.workers=…, validated with the rest of the config.
  const overridden = applyOverrides(await readConfigFile(file), [...o.set, ...(o.workers === undefined ? [] : [`training.workers=${o.workers}`])]);
  // --threads wins over the file's `threads` (validated with the rest of the config below).
  const raw = o.threads === undefined ? overridden : { ...(overridden as object), threads: o.threads };
  const config = parseExperimentConfig(raw, file);
  const controller = new AbortController();
  // SIGTERM (schedulers, containers preempting) is handled like the first Ctrl-C: finish the step, write a
  // resumable last/, exit. A second signal of either kind falls through to Node's default (immediate exit).
  const onSignal = (signal: NodeJS.Signals) => {
    io.stderr(`\n${signal === 'SIGTERM' ? 'SIGTERM' : 'interrupt'}: finishing the current step, then saving a resumable checkpoint (Ctrl-C again to quit at once)\n`);
    controller.abort();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const results = await runExperiment(config, {
      runDir: o.resume ?? config.output.runDir,
      io,
      signal: controller.signal,
      resume: o.resume !== undefined,
      tty: process.stderr.isTTY ? process.stderr : undefined,
    });
    if (o.json) writeJson(io, results);
    else {
      io.stdout(`${formatResultsTable(results)}\n`);
      io.stdout(`\nrun directory: ${results.runDir}${results.interrupted ? ` (interrupted: continue with clip train --resume ${results.runDir})` : ''}\n`);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function registerTrain(program: Command, io: CliIO): void {
  program
    .command('train')
    .description('train a CLIP model from an experiment config (JSON or YAML; schema in docs/config.schema.json)')
    .option('--config <file>', 'experiment config (.json, .yaml)')
    .option('--set <key=value>', 'override a config value, e.g. --set optim.lr=3e-4 (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--resume <runDir>', 'continue an interrupted or finished run from its last/ checkpoint')
    .option('--workers <n>', "data-parallel replicas (threads) for training: a count or 'auto' (= training.workers)")
    .option('--json', 'print the results as one JSON object on stdout')
    .option('--threads <n>', THREADS_HELP, threadsArg)
    .action(async (o: TrainCommandOptions) => {
      await runTrainCommand(o, io);
    });
}
