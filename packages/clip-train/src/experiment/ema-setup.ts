import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CheckpointError, type CLIPModel, type NamedVariable } from '@clip-ts/core';
import { EmaCallback } from '../callbacks/ema.js';
import type { ExperimentConfig } from '../config/schema.js';
import { ModelEma } from '../ema/model-ema.js';
import { evaluateCaptionSplit } from '../evaluation/split.js';
import type { AnyPipeline } from './pipeline.js';
import { loadModelDir, saveModelDir, type HFCLIPAssets } from './pretrained.js';

/** Sub-directory of best/ and last/ holding the averaged weights: a complete checkpoint of its own. */
export const EMA_DIR = 'ema';

/**
 * training.ema: the average of the training weights (`trainable`, borrowed), restored from a resumed
 * checkpoint's ema/ exactly; its callback validates it each epoch with the run's own evaluation. The
 * caller owns the returned ModelEma.
 */
export async function setupEma(
  spec: NonNullable<NonNullable<ExperimentConfig['training']>['ema']>,
  o: { trainable: readonly NamedVariable[]; resumeFrom: string | undefined; seed: number; topK: number[]; withPipeline: AnyPipeline },
): Promise<{ ema: ModelEma; callback: EmaCallback }> {
  const ema = new ModelEma(o.trainable, spec);
  try {
    if (o.resumeFrom) await restoreEma(ema, path.join(o.resumeFrom, EMA_DIR), o.seed);
    const evaluate = await o.withPipeline(async (p) => async (epoch: number) => (await evaluateCaptionSplit(p.task, p.val, { epoch, topK: o.topK })).logs);
    return { ema, callback: new EmaCallback({ ema, evaluate }) };
  } catch (err) {
    ema.dispose();
    throw err;
  }
}

async function restoreEma(ema: ModelEma, dir: string, seed: number): Promise<void> {
  const present = await fs.stat(dir).then(() => true, () => false);
  if (!present) throw new CheckpointError(`${dir}: missing; a run with training.ema resumes its average from the checkpoint's ema/ directory`);
  const saved = await loadModelDir(dir, { seed });
  try {
    ema.restore(saved.namedVariables(), dir);
  } finally {
    saved.dispose();
  }
}

/** A checkpoint writer that also saves the averaged weights (with the same assets) into `<dir>/ema`. */
export function withEmaCheckpoint(
  ema: ModelEma,
  model: CLIPModel,
  o: { writeAssets: ((dir: string) => Promise<void>) | undefined; hfAssets: HFCLIPAssets | undefined },
): (dir: string) => Promise<void> {
  return async (dir) => {
    await o.writeAssets?.(dir);
    const sub = path.join(dir, EMA_DIR);
    await ema.withAveragedWeights(() => saveModelDir(model, sub, o.hfAssets));
    await o.writeAssets?.(sub);
  };
}
