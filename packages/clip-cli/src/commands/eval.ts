import type { Command } from 'commander';
import { describeBackend, initBackend, type BackendName, type RecallAtK } from '@clip-ts/core';
import { CaptionLoader } from '@clip-ts/data';
import { CLIP } from '@clip-ts/encoders';
import type { CliIO } from '../cli.js';
import { captionPickSeed, captionRetrieval, clipModelTask, evaluateCaptionSplit, fixedEpoch, splitMetricsFromLogs } from '@clip-ts/train';
import { buildCaptionDataset } from '../support/datasets.js';
import { markdownTable, num, pct, progress, writeJson } from '../support/format.js';
import { THREADS_HELP, backendArg, threadsArg, captionDatasetArg, positiveInt, zodArg, type CaptionDatasetKind } from '../support/options.js';
import { z } from 'zod';

export interface EvalOptions {
  checkpoint: string;
  dataset: CaptionDatasetKind;
  root?: string;
  split?: string;
  batchSize: number;
  caption: 'random' | 'first';
  /** The run's experiment seed: caption picks derive from it as in runExperiment (captionPickSeed). */
  seed: number;
  /** k values of the in-batch top-k (default [1, 5], as config eval.topK). */
  topK?: number[];
  /** k values of full-split Recall@K (default [1, 5, 10], as config eval.recallK). */
  recallK?: number[];
  backend?: BackendName;
  threads?: number;
}

export interface EvalResult {
  checkpoint: string;
  dataset: string;
  split: string;
  backend: string;
  images: number;
  captions: number;
  /** Mean symmetric CLIP loss over the split's batches (one caption per image), weighted by batch size. */
  loss: number;
  /**
   * The reference's protocol, as the trainer and results.json count it: each image's caption among the
   * captions of its batch, over ALL batches (a partial last batch too), as a fraction of all pairs.
   */
  inBatch: { batchSize: number; batches: number; topK: RecallAtK[] };
  /** Every image against every caption of the split (all captions of each image). */
  recall: RecallAtK[];
}

/**
 * One pass of train's evaluateCaptionSplit, the protocol runExperiment's test metrics use: with the
 * run's eval batch size, caption pick and seed, the numbers equal results.json's `test`.
 */
export async function runEval(opts: EvalOptions, io: CliIO): Promise<EvalResult> {
  const backend = await initBackend(opts.backend, { threads: opts.threads });
  progress(io, describeBackend(backend));
  const dataset = buildCaptionDataset(opts.dataset, opts.root, opts.split);
  const ckpt = await CLIP.fromPretrained(opts.checkpoint);
  const { model } = ckpt;
  const topK = opts.topK ?? [1, 5];
  try {
    const loader = new CaptionLoader(dataset, {
      batchSize: opts.batchSize,
      imageProcessor: ckpt.imageProcessor,
      tokenizer: ckpt.tokenizer,
      maxLength: ckpt.maxLength,
      captionPick: opts.caption,
      seed: captionPickSeed(opts.seed),
    });
    progress(io, `evaluating ${dataset.length} images of ${dataset.name}/${dataset.split} in batches of ${opts.batchSize}`);
    if (dataset.length < opts.batchSize) {
      progress(io, `note: the split has fewer images (${dataset.length}) than --batch-size; in-batch top-k is out of ${dataset.length}`);
    }
    const { logs, retrieval } = await evaluateCaptionSplit(clipModelTask(model, { vision: true, text: true }), fixedEpoch(loader), {
      topK,
      retrieval: captionRetrieval(model, dataset, { tokenizer: ckpt.tokenizer, maxLength: ckpt.maxLength, batchSize: opts.batchSize, ks: opts.recallK ?? [1, 5, 10] }),
    });
    const m = splitMetricsFromLogs(logs, '');
    return {
      checkpoint: opts.checkpoint,
      dataset: dataset.name,
      split: dataset.split,
      backend: backend.name,
      images: retrieval.images,
      captions: retrieval.captions,
      loss: m.loss,
      inBatch: {
        batchSize: m.batchSize,
        batches: loader.numBatches,
        topK: topK.map((k) => ({ k, imageToText: m.topK[`top${k}`] ?? NaN, textToImage: m.textTopK[`top${k}`] ?? NaN })),
      },
      recall: retrieval.recall,
    };
  } finally {
    model.dispose();
  }
}

export function formatEval(r: EvalResult): string {
  const head = `Evaluation of ${r.checkpoint} on ${r.dataset}/${r.split}: ${r.images} images, ${r.captions} captions\n\n`;
  const main = markdownTable(
    ['metric', 'image→text', 'text→image'],
    [
      ['test loss (symmetric CLIP)', num(r.loss), ''],
      ...r.inBatch.topK.map((t) => [`in-batch top-${t.k} (batch ${r.inBatch.batchSize})`, pct(t.imageToText), pct(t.textToImage)]),
      ...r.recall.map((t) => [`Recall@${t.k} (full split)`, pct(t.imageToText), pct(t.textToImage)]),
    ],
    ['left', 'right', 'right'],
  );
  return head + main;
}

export function registerEval(program: Command, io: CliIO): void {
  program
    .command('eval')
    .description('test loss, in-batch top-1/top-5 and full-split Recall@1/5/10 of a checkpoint on a caption set')
    .requiredOption('--checkpoint <dir|id>', 'checkpoint: a directory (a run\'s best/, an HF CLIP repo), a Hub id (org/name) or an http(s) URL')
    .requiredOption('--dataset <kind>', 'flickr8k | csv | shapes', captionDatasetArg)
    .option('--root <dir>', 'dataset directory (Flickr8k root; a captions CSV or its directory)')
    .option('--split <name>', 'split to evaluate: train | val (dev) | test (default test); for csv, rows with that split column')
    .option('--batch-size <n>', 'batch size (in-batch top-k is out of this many; reference: 32)', positiveInt('--batch-size'), 32)
    .option('--caption <pick>', 'which caption pairs with each image for loss and in-batch metrics: random (seeded) | first', zodArg('--caption', z.enum(['random', 'first'])), 'random')
    .option('--seed <n>', "the run's experiment seed (caption picks derive from it as in training)", zodArg('--seed', z.coerce.number().int().min(0)), 42)
    .option('--top-k <list>', 'in-batch k values, comma-separated (config eval.topK)', kList('--top-k'), [1, 5])
    .option('--recall-k <list>', 'full-split Recall@K k values, comma-separated (config eval.recallK)', kList('--recall-k'), [1, 5, 10])
    .option('--backend <name>', 'tfjs backend (default: $CLIP_BACKEND or auto)', backendArg)
    .option('--threads <n>', THREADS_HELP, threadsArg)
    .option('--json', 'print the result as one JSON object on stdout')
    .action(async (o: EvalOptions & { json?: boolean }) => {
      const result = await runEval(o, io);
      if (o.json) writeJson(io, result);
      else io.stdout(formatEval(result));
    });
}

/** A comma-separated list of positive integers (`1,5,10`). */
function kList(flag: string): (value: string) => number[] {
  return zodArg(flag, z.string().transform((v) => v.split(',').map(Number)).pipe(z.array(z.number().int('must be integers').positive('must be positive')).min(1)));
}
