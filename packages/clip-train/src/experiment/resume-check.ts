import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError } from '@clip-ts/core';
import { writeFileAtomic } from '@clip-ts/core/node';
import type { ExperimentConfig } from '../config/schema.js';
import { TrainingError } from '../trainer/errors.js';
import { existingCheckpointDir, readRunState } from '../trainer/run-state.js';
import { RUN_CONFIG_FILE } from './files.js';
import { claimRunDir } from './run-dir.js';
import type { RunContext } from './setup.js';

/** Keys whose change makes a checkpoint unusable for resuming (what was trained, on what, how). */
const RESUME_KEYS = ['seed', 'model', 'data', 'optim', 'loss', 'targets', 'distill'] as const;
/** What a run directory written before a key existed meant by its absence. */
const ABSENT_MEANS: Partial<Record<(typeof RESUME_KEYS)[number], unknown>> = { loss: 'clip', targets: 'auto' };

/**
 * Step 2: a resumed run must have a resumable last/ from a compatible config; a new run must not
 * overwrite one. Creates the run directory (and config.json for a new run). Returns the checkpoint to
 * resume from, or undefined for a new run.
 */
export async function checkResume(run: RunContext, resume: boolean | undefined): Promise<string | undefined> {
  const { runDir, lastDir, config } = run;
  let resumeFrom: string | undefined;
  if (resume) {
    resumeFrom = await existingCheckpointDir(lastDir);
    if (!resumeFrom) throw new TrainingError(`cannot resume: ${runDir} has no last/ checkpoint (nothing to resume; start a new run instead)`);
    await readRunState(resumeFrom); // fails early, with the reason, on a directory without trainer state
    await checkResumeCompatible(runDir, config);
  } else if (await existingCheckpointDir(lastDir)) {
    // A best/ without last/ is a run killed before its first resumable checkpoint: claimRunDir lets a new
    // run replace it in a directory this tool marked, and refuses it anywhere else.
    throw new TrainingError(`${runDir} already holds a run (last/); pass resume to continue it, or choose another output.runDir`);
  }
  await claimRunDir(runDir, { resume });
  if (!resumeFrom) await writeFileAtomic(path.join(runDir, RUN_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  return resumeFrom;
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
  for (const k of RESUME_KEYS) walk(saved[k] ?? ABSENT_MEANS[k], config[k], k);
  // Of `training`, only the EMA changes what is trained; workers and micro-batch size give the same
  // gradients, so a run may resume with other ones.
  walk((saved.training as { ema?: unknown } | undefined)?.ema, config.training.ema, 'training.ema');
  if (diffs.length > 0) {
    throw new ConfigError(`cannot resume ${runDir}: the checkpoint comes from an incompatible config:\n${diffs.join('\n')}`);
  }
}
