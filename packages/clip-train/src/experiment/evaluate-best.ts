import { captionRetrieval } from '../evaluation/captions.js';
import { evaluateCaptionSplit } from '../evaluation/split.js';
import { TrainingError } from '../trainer/errors.js';
import { existingCheckpointDir } from '../trainer/run-state.js';
import { clipModelTask } from './model.js';
import { evalLoader, fixedEpoch } from './pipeline.js';
import { splitMetricsFromLogs, type Results } from './results.js';
import { loadModelDir } from './pretrained.js';
import type { RunContext, RunInputs } from './setup.js';

/**
 * Step 6: the best checkpoint on the test split with the one evaluation protocol (evaluateCaptionSplit):
 * loss and in-batch top-k over the eval-size batches, then full-split Recall@K reusing those batches'
 * image embeddings. `clip eval` on best/ with the run's settings reports the same numbers.
 */
export async function evaluateBest(run: RunContext, inputs: RunInputs): Promise<NonNullable<Results['test']>> {
  const { config } = run;
  const dir = await existingCheckpointDir(run.bestDir);
  if (!dir) throw new TrainingError(`${run.bestDir}: no best checkpoint was written (did every epoch fail validation?)`);
  const best = await loadModelDir(dir, { seed: config.seed });
  try {
    const test = inputs.data.test;
    const { logs, retrieval } = await evaluateCaptionSplit(clipModelTask(best, { vision: true, text: true }, run.config.targets), fixedEpoch(evalLoader(run, inputs, test)), {
      topK: config.eval.topK,
      retrieval: captionRetrieval(best, test, { tokenizer: inputs.tokenizer, maxLength: config.data.maxLength, batchSize: run.evalBatch, ks: config.eval.recallK }),
    });
    const metrics = splitMetricsFromLogs(logs, '');
    run.log(`test: loss ${metrics.loss.toFixed(4)}, ${Object.entries(metrics.topK).map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`).join(', ')}`);
    return { ...metrics, retrieval };
  } finally {
    best.dispose();
  }
}
