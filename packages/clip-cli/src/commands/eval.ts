import * as tf from '@tensorflow/tfjs-core';
import type { Command } from 'commander';
import { clipLoss, describeBackend, inBatchTopK, initBackend, retrievalRecallAtK, type BackendName, type RecallAtK } from '@clip-ts/core';
import { allCaptions, CaptionLoader, disposeBatch } from '@clip-ts/data';
import { CLIP } from '@clip-ts/encoders';
import type { CliIO } from '../cli.js';
import { buildCaptionDataset } from '../support/datasets.js';
import { embedTexts } from '../support/embeddings.js';
import { markdownTable, num, pct, progress, writeJson } from '../support/format.js';
import { backendArg, captionDatasetArg, positiveInt, zodArg, type CaptionDatasetKind } from '../support/options.js';
import { z } from 'zod';

export interface EvalOptions {
  checkpoint: string;
  dataset: CaptionDatasetKind;
  root?: string;
  split?: string;
  batchSize: number;
  caption: 'random' | 'first';
  seed: number;
  backend?: BackendName;
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
  /** The reference's protocol: each image's caption among the B captions of its batch (full batches only). */
  inBatch: { batchSize: number; batches: number; topK: RecallAtK[] };
  /** Every image against every caption of the split (all captions of each image). */
  recall: RecallAtK[];
}

export async function runEval(opts: EvalOptions, io: CliIO): Promise<EvalResult> {
  const backend = await initBackend(opts.backend);
  progress(io, describeBackend(backend));
  const dataset = buildCaptionDataset(opts.dataset, opts.root, opts.split);
  const ckpt = await CLIP.fromPretrained(opts.checkpoint);
  const { model } = ckpt;
  const dim = model.projectionDim;
  try {
    const loader = new CaptionLoader(dataset, {
      batchSize: opts.batchSize,
      imageProcessor: ckpt.imageProcessor,
      tokenizer: ckpt.tokenizer,
      maxLength: ckpt.maxLength,
      captionPick: opts.caption,
      seed: opts.seed,
    });
    const imageData = new Float32Array(dataset.length * dim);
    let lossSum = 0;
    let seen = 0;
    let fullBatches = 0;
    const inBatchSums = new Map<number, { i2t: number; t2i: number }>([1, 5].map((k) => [k, { i2t: 0, t2i: 0 }]));
    progress(io, `evaluating ${dataset.length} images of ${dataset.name}/${dataset.split} in batches of ${opts.batchSize}`);
    for await (const batch of loader.batches(0)) {
      try {
        const img = model.encodeImages(batch.pixelValues);
        const txt = model.encodeTexts({ inputIds: batch.inputIds, attentionMask: batch.attentionMask });
        const loss = clipLoss(img, txt, model.logitScale);
        const sims = tf.matMul(img, txt, false, true) as tf.Tensor2D;
        try {
          const n = batch.indices.length;
          lossSum += ((await loss.data())[0] as number) * n;
          const rows = await img.data();
          batch.indices.forEach((idx, i) => imageData.set(rows.subarray(i * dim, (i + 1) * dim), idx * dim));
          if (n === opts.batchSize) {
            fullBatches++;
            for (const r of inBatchTopK(sims, [1, 5])) {
              const s = inBatchSums.get(r.k) as { i2t: number; t2i: number };
              s.i2t += r.imageToText;
              s.t2i += r.textToImage;
            }
          }
          seen += n;
        } finally {
          tf.dispose([img, txt, loss, sims]);
        }
      } finally {
        disposeBatch(batch);
      }
    }
    // A split smaller than one batch still gets an in-batch number, out of the images it has.
    let inBatchSize = opts.batchSize;
    if (fullBatches === 0) {
      inBatchSize = dataset.length;
      progress(io, `note: the split has fewer images (${dataset.length}) than --batch-size; in-batch top-k is out of ${dataset.length}`);
      const all = tf.tensor2d(imageData, [dataset.length, dim]);
      const firstCaps = await embedTexts(
        ckpt,
        Array.from({ length: dataset.length }, (_, i) => dataset.captions(i)[loader.captionIndex(i, 0)] as string),
      );
      const t = tf.tensor2d(firstCaps.data, [dataset.length, dim]);
      const sims = tf.matMul(all, t, false, true) as tf.Tensor2D;
      for (const r of inBatchTopK(sims, [1, 5])) inBatchSums.set(r.k, { i2t: r.imageToText, t2i: r.textToImage });
      fullBatches = 1;
      tf.dispose([all, t, sims]);
    }
    const { texts, imageIndex: textToImage } = allCaptions(dataset);
    progress(io, `full-split retrieval: ${dataset.length} images × ${texts.length} captions`);
    const textEmb = await embedTexts(ckpt, texts, opts.batchSize);
    const imgT = tf.tensor2d(imageData, [dataset.length, dim]);
    const txtT = tf.tensor2d(textEmb.data, [texts.length, dim]);
    let recall: RecallAtK[];
    try {
      recall = await retrievalRecallAtK(imgT, txtT, textToImage, [1, 5, 10].filter((k) => k <= Math.max(dataset.length, 1)));
    } finally {
      tf.dispose([imgT, txtT]);
    }
    return {
      checkpoint: opts.checkpoint,
      dataset: dataset.name,
      split: dataset.split,
      backend: backend.name,
      images: dataset.length,
      captions: texts.length,
      loss: lossSum / seen,
      inBatch: {
        batchSize: inBatchSize,
        batches: fullBatches,
        topK: [...inBatchSums].map(([k, s]) => ({ k, imageToText: s.i2t / fullBatches, textToImage: s.t2i / fullBatches })),
      },
      recall,
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
    .option('--seed <n>', 'seed of the caption pick', zodArg('--seed', z.coerce.number().int().min(0)), 42)
    .option('--backend <name>', 'tfjs backend (default: $CLIP_BACKEND or auto)', backendArg)
    .option('--json', 'print the result as one JSON object on stdout')
    .action(async (o: EvalOptions & { json?: boolean }) => {
      const result = await runEval(o, io);
      if (o.json) writeJson(io, result);
      else io.stdout(formatEval(result));
    });
}
