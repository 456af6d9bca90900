import type { Command } from 'commander';
import { describeBackend, type BackendName } from '@clip-ts/core';
import { CLIP, toTensors } from '@clip-ts/encoders';
import type { CliIO } from '../cli.js';
import { embedClassificationSet, scoreTemplates, type WorkersSetting, type ZeroShotReport } from '@clip-ts/train';
import { WORKERS_HELP, startInference, withEmbedPool, workersArg } from '../support/inference.js';
import { buildClassificationDataset } from '../support/datasets.js';
import { confusionTable, markdownTable, pct, progress, writeJson } from '../support/format.js';
import { DECODER_HELP, THREADS_HELP, backendArg, decoderArg, threadsArg, classificationDatasetArg, positiveInt, templateArg, type ClassificationDatasetKind, type DecoderName } from '../support/options.js';

/** The reference's prompt experiment on CIFAR-10: bare class name, "a photo of a …", "a fuzzy photo of a …". */
export const REFERENCE_TEMPLATES: readonly string[] = ['{}', 'a photo of a {}.', 'a fuzzy photo of a {}.'];

export interface ZeroshotOptions {
  checkpoint: string;
  dataset: ClassificationDatasetKind;
  root?: string;
  split?: string;
  template?: string[];
  batchSize?: number;
  backend?: BackendName;
  threads?: number;
  /** JPEG decoder of the image processor (default 'turbo'). */
  decoder?: DecoderName;
  /** Replicas that split each batch of images (EmbedPool); default 'auto'. */
  workers?: WorkersSetting;
}

export interface ZeroshotResult extends ZeroShotReport {
  checkpoint: string;
  dataset: string;
  split: string;
  backend: string;
}

export async function runZeroshot(opts: ZeroshotOptions, io: CliIO): Promise<ZeroshotResult> {
  const dataset = buildClassificationDataset(opts.dataset, opts.root, opts.split);
  const batchSize = opts.batchSize ?? 64;
  const { info: backend, replicas } = await startInference({ backend: opts.backend, threads: opts.threads, workers: opts.workers, rows: dataset.length, batchSize });
  progress(io, describeBackend(backend) + (replicas > 1 ? `, ${replicas} replicas` : ''));
  const templates = opts.template && opts.template.length > 0 ? opts.template : ['a photo of a {}.'];
  const ckpt = await CLIP.fromPretrained(opts.checkpoint, opts.decoder ? { imageProcessor: { decoder: opts.decoder } } : {});
  try {
    progress(io, `embedding ${dataset.length} images of ${dataset.name}/${dataset.split} (${dataset.classNames.length} classes)`);
    let last = 0;
    const images = await withEmbedPool(ckpt.model, replicas, (pool) =>
      embedClassificationSet(ckpt.model, ckpt.imageProcessor, dataset, {
        batchSize,
        ...(pool ? { encoder: pool } : {}),
        onBatch: (done, total) => {
          if (done - last >= 1000 || done === total) {
            progress(io, `  ${done}/${total}`);
            last = done;
          }
        },
      }),
    );
    const report = scoreTemplates(ckpt.model, (texts) => toTensors(ckpt.tokenizer.encode(texts, ckpt.maxLength)), dataset.classNames, images, templates);
    return { checkpoint: opts.checkpoint, dataset: dataset.name, split: dataset.split, backend: backend.name, ...report };
  } finally {
    ckpt.dispose();
  }
}

/** The results as markdown: accuracy per template (with chance), per-class accuracy, confusion matrix. */
export function formatZeroshot(r: ZeroShotReport & { dataset?: string; split?: string }): string {
  const ks = [...new Set(r.scores.flatMap((s) => Object.keys(s.topK).map(Number)))].sort((a, b) => a - b);
  const head = `Zero-shot${r.dataset ? ` on ${r.dataset}/${r.split}` : ''}: ${r.images} images, ${r.classNames.length} classes, chance top-1 = ${pct(r.chance)}\n\n`;
  const acc = markdownTable(
    ['prompt', ...ks.map((k) => `top-${k}`)],
    r.scores.map((s) => [JSON.stringify(s.template).slice(1, -1), ...ks.map((k) => pct(s.topK[k] ?? Number.NaN))]),
  );
  const perClass = markdownTable(
    ['class', 'images', 'accuracy'],
    r.classNames.map((c, i) => [c, String(r.detail.confusionMatrix[i]?.reduce((a, b) => a + b, 0) ?? 0), pct(r.detail.perClassAccuracy[i] ?? Number.NaN)]),
  );
  return `${head}${acc}\nPer-class accuracy (${r.detail.template}):\n\n${perClass}\nConfusion matrix (${r.detail.template}; rows: true class, columns: predicted):\n\n${confusionTable(r.detail.confusionMatrix, r.classNames)}`;
}

export function registerZeroshot(program: Command, io: CliIO): void {
  program
    .command('zeroshot')
    .description('zero-shot classification: top-1/3/5 per prompt template, per-class accuracy, confusion matrix')
    .requiredOption('--checkpoint <dir|id>', 'checkpoint: a directory (a run\'s best/, an HF CLIP repo), a Hub id (org/name) or an http(s) URL')
    .requiredOption('--dataset <kind>', 'cifar10 | cifar100 | imagefolder | shapes | svhn', classificationDatasetArg)
    .option('--root <dir>', 'dataset directory (cifar-10-batches-bin/, cifar-100-binary/ or their parent; an image folder; the folder holding SVHN\'s *_32x32.mat)')
    .option('--split <name>', 'split for CIFAR (test | train; default test) and SVHN (test | train | extra; default test); label for an image folder')
    .option('--template <text>', 'prompt template with {} for the class name; repeat for several (default "a photo of a {}.")', templateArg)
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--backend <name>', 'tfjs backend (default: $CLIP_BACKEND or auto)', backendArg)
    .option('--threads <n>', THREADS_HELP, threadsArg)
    .option('--workers <n|auto>', WORKERS_HELP, workersArg)
    .option('--decoder <name>', DECODER_HELP, decoderArg)
    .option('--json', 'print the result as one JSON object on stdout')
    .action(async (o: ZeroshotOptions & { json?: boolean }) => {
      const result = await runZeroshot(o, io);
      if (o.json) {
        const { detail, ...rest } = result;
        writeJson(io, { ...rest, perClassAccuracy: Object.fromEntries(result.classNames.map((c, i) => [c, detail.perClassAccuracy[i]])), confusionMatrix: detail.confusionMatrix, detailTemplate: detail.template });
      } else io.stdout(formatZeroshot(result));
    });
}
