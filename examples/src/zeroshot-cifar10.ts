/**
 * The reference's prompt experiment: zero-shot CIFAR-10 (test split, 10 000 images) with a Flickr8k-trained
 * checkpoint and three prompts — the bare class name, "a photo of a {}." and "a fuzzy photo of a {}." —
 * reporting top-1 and top-3 for each. Reference top-1: 51.21%, 54.05%, 55.23%.
 *
 *   npm run zeroshot-cifar10 -w examples -- --checkpoint runs/reproduce-finetuned/best --root data/cifar10
 *   npm run zeroshot-cifar10 -w examples -- --dry-run
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { BACKEND_NAMES, CLIPModel, ValueError, type BackendName } from '@clip-ts/core';
import '@clip-ts/encoders';
import { bundledTokenizerFile, REFERENCE_TEMPLATES, runZeroshot, type ZeroshotResult } from '@clip-ts/cli';
import { saveCheckpointAssets } from '@clip-ts/train';
import { chooseBackend, isMain, runAsScript, type ExampleIO } from './common.js';
import { writeMiniCifar10 } from './mini-data.js';
import { saveCLIPModel } from '@clip-ts/core/node';

/** The reference's top-1 per prompt. */
export const REFERENCE_TOP1: Readonly<Record<string, number>> = {
  '{}': 0.5121,
  'a photo of a {}.': 0.5405,
  'a fuzzy photo of a {}.': 0.5523,
};

export function zeroshotTable(r: ZeroshotResult): string {
  const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(2)}%`);
  const rows = r.scores
    .filter((s) => s.template in REFERENCE_TOP1)
    .map((s) => `| ${s.template === '{}' ? '{} (bare class name)' : s.template} | ${pct(REFERENCE_TOP1[s.template])} | ${pct(s.topK[1])} | ${pct(s.topK[3])} |`);
  return [
    `Zero-shot CIFAR-10 ${r.split} (${r.images} images, chance top-1 ${pct(r.chance)})`,
    '',
    '| prompt | reference top-1 | clip-ts top-1 | clip-ts top-3 |',
    '| --- | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n');
}

/** A tiny random checkpoint with its tokenizer and preprocessing, for the dry run. */
async function tinyCheckpoint(dir: string): Promise<string> {
  const model = CLIPModel.fromConfig(
    {
      model_type: 'clip-ts',
      projection_dim: 16,
      vision_config: { model_type: 'vit', hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, intermediate_size: 64, image_size: 32, patch_size: 8 },
      text_config: { model_type: 'distilbert', dim: 32, n_layers: 1, n_heads: 4, hidden_dim: 64, max_position_embeddings: 64 },
    },
    { seed: 42 },
  );
  try {
    await saveCLIPModel(model, dir);
  } finally {
    model.dispose();
  }
  await saveCheckpointAssets(dir, { tokenizerFile: bundledTokenizerFile(), maxLength: 40, imageProcessor: { height: 32, width: 32 } });
  return dir;
}

export async function main(argv: string[], io: ExampleIO): Promise<number> {
  const program = new Command('zeroshot-cifar10')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .option('--checkpoint <dir>', 'a checkpoint from reproduce-finetuned', 'runs/reproduce-finetuned/best')
    .option('--root <dir>', 'CIFAR-10 binary version (cifar-10-batches-bin/ or its parent)', process.env.CIFAR10_DIR ?? 'data/cifar10')
    .option('--backend <name>', `one of ${BACKEND_NAMES.join(', ')}`, 'tensorflow-gpu')
    .option('--dry-run', 'a generated miniature cifar-10-batches-bin and a tiny random checkpoint');
  let opts: { checkpoint: string; root: string; backend: string; dryRun?: boolean };
  try {
    program.parse(argv, { from: 'user' });
    opts = program.opts();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  if (!(BACKEND_NAMES as readonly string[]).includes(opts.backend)) throw new ValueError(`--backend: expected one of ${BACKEND_NAMES.join(', ')}`);
  const backend = await chooseBackend(opts.backend as BackendName, io, opts.dryRun === true);
  let { checkpoint, root } = opts;
  let work: string | undefined;
  if (opts.dryRun) {
    work = await mkdtemp(join(tmpdir(), 'clip-zeroshot-cifar10-'));
    io.stderr(`dry run: miniature CIFAR-10 and a tiny random checkpoint in ${work}\n`);
    root = join(work, 'cifar10');
    await writeMiniCifar10(root, { perTrainBatch: 2, test: 20 });
    checkpoint = await tinyCheckpoint(join(work, 'checkpoint'));
  }
  try {
    const result = await runZeroshot({ checkpoint, dataset: 'cifar10', root, template: [...REFERENCE_TEMPLATES], backend }, io);
    io.stdout(zeroshotTable(result));
    return 0;
  } finally {
    if (work) await rm(work, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) runAsScript(main);
