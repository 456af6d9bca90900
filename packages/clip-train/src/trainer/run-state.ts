import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ClipError, tensorToWritable } from '@clip-ts/core';
import { readSafetensors, writeFileAtomic, writeSafetensors } from '@clip-ts/core/node';
import { z } from 'zod';
import type { Optimizer } from '../optim/optimizer.js';
import { TrainingError } from './errors.js';
import type { TrainableModel, TrainerState } from './types.js';

export const TRAINER_STATE_FILE = 'trainer-state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

const logsSchema = z.record(z.string(), z.number().nullable().transform((v) => v ?? NaN));
const stateFileSchema = z.object({
  format: z.literal('clip-ts-trainer-state/1'),
  trainer: z.object({
    epoch: z.number().int().nonnegative(),
    batchInEpoch: z.number().int().nonnegative(),
    epochLossSum: z.number(),
    epochLossCount: z.number().int().nonnegative(),
    globalStep: z.number().int().nonnegative(),
    history: z.array(logsSchema),
    callbacks: z.record(z.string(), z.unknown()),
  }),
  optimizer: z.object({
    /** The optimizer's `kind` (adam, adamw, sgd, or a user optimizer's own). */
    kind: z.string().min(1),
    step: z.number().int().nonnegative(),
    groups: z.array(z.object({ name: z.string(), lr: z.number(), weightDecay: z.number() })),
  }),
  /** Whatever else the run needs back (RNG states, config hash...). */
  extra: z.record(z.string(), z.unknown()),
});
export type RunStateFile = z.infer<typeof stateFileSchema>;

/**
 * Replace directory `dir` with what `fill(tmp)` writes into a fresh sibling temp dir. The old directory is
 * moved aside first and removed only after the new one is in place, so a crash at any moment leaves a
 * complete `dir` or a complete `dir.old` (which readers fall back to), never a torn mix.
 */
export async function replaceDirAtomic(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const parent = path.dirname(dir);
  await fs.mkdir(parent, { recursive: true });
  const tmp = path.join(parent, `.${path.basename(dir)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const old = `${dir}.old`;
  try {
    await fs.mkdir(tmp);
    await fill(tmp);
    // With no `dir` (a crash left only `dir.old`), that .old is the only complete copy: it goes only
    // after the new directory is in place.
    if (await exists(dir)) {
      await fs.rm(old, { recursive: true, force: true });
      await fs.rename(dir, old);
    }
    await fs.rename(tmp, dir);
    await fs.rm(old, { recursive: true, force: true });
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    // One typed error for every way a checkpoint write fails (disk full in the optimizer state included).
    if (err instanceof ClipError) throw err;
    const file = (err as { path?: unknown }).path;
    throw new CheckpointError(
      `${dir}: cannot save checkpoint${typeof file === 'string' ? ` (writing ${file})` : ''}: ${(err as Error).message}; the previous checkpoint is intact`,
      { cause: err },
    );
  }
}

/** `dir` if it exists, else the `dir.old` a crash mid-replace left behind, else undefined. */
export async function existingCheckpointDir(dir: string): Promise<string | undefined> {
  if (await exists(dir)) return dir;
  if (await exists(`${dir}.old`)) return `${dir}.old`;
  return undefined;
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** Write a resumable checkpoint: the model (model.save), optimizer moments and the trainer's JSON state. */
export async function saveRunState(
  dir: string,
  parts: {
    model: TrainableModel;
    optimizer: Optimizer;
    trainer: TrainerState;
    extra?: Record<string, unknown>;
    /** Writes extra files (tokenizer, preprocessing config) into the checkpoint before it is published. */
    writeAssets?: (dir: string) => Promise<void>;
  },
): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    await parts.model.save(tmp);
    await parts.writeAssets?.(tmp);
    const opt = parts.optimizer.getState();
    try {
      const tensors = new Map([...opt.tensors].map(([k, t]) => [k, tensorToWritable(t)] as const));
      await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), tensors, { format: 'clip-ts-optimizer/1', kind: opt.kind });
    } finally {
      tf.dispose([...opt.tensors.values()]);
    }
    const file: RunStateFile = {
      format: 'clip-ts-trainer-state/1',
      trainer: parts.trainer,
      optimizer: { kind: opt.kind, step: opt.step, groups: opt.groups },
      extra: parts.extra ?? {},
    };
    // NaN (an epoch without validation) is not JSON: written as null, read back as NaN.
    await writeFileAtomic(path.join(tmp, TRAINER_STATE_FILE), `${JSON.stringify(file, null, 1)}\n`);
  });
}

/** Read a checkpoint's trainer state; a directory without one is a TrainingError saying so. */
export async function readRunState(dir: string): Promise<RunStateFile> {
  const file = path.join(dir, TRAINER_STATE_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new TrainingError(`cannot resume from ${dir}: it has no ${TRAINER_STATE_FILE} (not a checkpoint written by 'clip train', or the run never finished an epoch)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TrainingError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = stateFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new TrainingError(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** Restore optimizer moments and LRs from a checkpoint dir written by saveRunState. */
export async function loadOptimizerState(dir: string, optimizer: Optimizer, state: RunStateFile): Promise<void> {
  if (state.optimizer.kind !== optimizer.kind) {
    throw new TrainingError(`${dir}: optimizer was '${state.optimizer.kind}', the config asks for '${optimizer.kind}'`);
  }
  const file = path.join(dir, OPTIMIZER_FILE);
  const st = await readSafetensors(file);
  const tensors = new Map([...st.tensors].map(([k, t]) => [k, tf.tensor(t.data, t.shape, t.dtype)] as const));
  try {
    optimizer.setState({ step: state.optimizer.step, groups: state.optimizer.groups, tensors }, file);
  } catch (err) {
    throw new TrainingError(`cannot resume from ${dir}: ${(err as Error).message}`, { cause: err });
  } finally {
    tf.dispose([...tensors.values()]);
  }
}

/**
 * Put a trainer and its optimizer back where checkpoint `dir` left them (weights are the model's business:
 * load them first). Returns the state file for the caller's extra fields.
 */
export async function restoreTrainer(
  dir: string,
  trainer: { optimizer: Optimizer; setState(state: TrainerState): void },
): Promise<RunStateFile> {
  const state = await readRunState(dir);
  await loadOptimizerState(dir, trainer.optimizer, state);
  trainer.setState(state.trainer);
  return state;
}
