import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import type { Command } from 'commander';
import { describeBackend, ValueError, type BackendName } from '@clip-ts/core';
import type { WorkersSetting } from '@clip-ts/train';
import { writeSafetensors } from '@clip-ts/core/node';
import { CLIP, type Embeddings } from '@clip-ts/encoders';
import type { CliIO } from '../cli.js';
import { jsonReplacer, progress, writeJson } from '../support/format.js';
import { DECODER_HELP, THREADS_HELP, backendArg, decoderArg, threadsArg, positiveInt, type DecoderName } from '../support/options.js';
import { WORKERS_HELP, startInference, withEmbedPool, workersArg } from '../support/inference.js';

export interface EmbedOptions {
  checkpoint: string;
  images?: string[];
  texts?: string[];
  out: string;
  batchSize?: number;
  backend?: BackendName;
  threads?: number;
  /** JPEG decoder of the image processor (default 'turbo'). */
  decoder?: DecoderName;
  /** Replicas that split each batch (EmbedPool); default 'auto'. */
  workers?: WorkersSetting;
}

export interface EmbedResult {
  kind: 'image' | 'text';
  count: number;
  dim: number;
  out: string;
  format: 'safetensors' | 'json';
}

/**
 * Embed images or texts with a checkpoint and write them to `out`: `.safetensors` holds one F32 tensor
 * `embeddings` [N, D] with the inputs listed in the metadata (`inputs`, a JSON array); `.json` holds
 * `{ kind, dim, inputs, embeddings: number[][] }`. Embeddings are L2-normalised, so dot products are cosines.
 */
export async function runEmbed(opts: EmbedOptions, io: CliIO): Promise<EmbedResult> {
  const hasImages = (opts.images?.length ?? 0) > 0;
  const hasTexts = (opts.texts?.length ?? 0) > 0;
  if (hasImages === hasTexts) throw new ValueError('clip embed: give either --images FILES... or --texts TEXTS..., not both or neither');
  const ext = extname(opts.out).toLowerCase();
  if (ext !== '.safetensors' && ext !== '.json') {
    throw new ValueError(`clip embed: --out ${opts.out}: the extension must be .safetensors or .json`);
  }
  const inputs = (hasImages ? opts.images : opts.texts) as string[];
  const batchSize = opts.batchSize ?? 32;
  const { info, replicas } = await startInference({ backend: opts.backend, threads: opts.threads, workers: opts.workers, rows: inputs.length, batchSize });
  progress(io, describeBackend(info) + (replicas > 1 ? `, ${replicas} replicas` : ''));
  const clip = await CLIP.fromPretrained(opts.checkpoint, opts.decoder ? { imageProcessor: { decoder: opts.decoder } } : {});
  let emb: Embeddings;
  try {
    progress(io, `embedding ${inputs.length} ${hasImages ? 'image(s)' : 'text(s)'} with ${opts.checkpoint}`);
    emb = await withEmbedPool(clip.model, replicas, (pool) => {
      const batch = { batchSize, ...(pool ? { encoder: pool } : {}) };
      return hasImages ? clip.embedImages(inputs, batch) : clip.embedTexts(inputs, batch);
    });
  } finally {
    clip.dispose();
  }
  const kind = hasImages ? 'image' : 'text';
  await mkdir(dirname(opts.out), { recursive: true });
  if (ext === '.safetensors') {
    await writeSafetensors(
      opts.out,
      { embeddings: { dtype: 'F32', shape: [emb.rows, emb.dim], data: emb.data } },
      { kind, inputs: JSON.stringify(inputs), checkpoint: opts.checkpoint },
    );
  } else {
    const rows = Array.from({ length: emb.rows }, (_, i) => Array.from(emb.data.subarray(i * emb.dim, (i + 1) * emb.dim)));
    await writeFile(opts.out, `${JSON.stringify({ kind, dim: emb.dim, checkpoint: opts.checkpoint, inputs, embeddings: rows }, jsonReplacer)}\n`);
  }
  return { kind, count: emb.rows, dim: emb.dim, out: opts.out, format: ext === '.json' ? 'json' : 'safetensors' };
}

export function registerEmbed(program: Command, io: CliIO): void {
  program
    .command('embed')
    .description('embed images or texts with a checkpoint; write .safetensors or .json (by extension)')
    .requiredOption('--checkpoint <dir|id>', 'checkpoint: a directory (a run\'s best/, an HF CLIP repo), a Hub id (org/name) or an http(s) URL')
    .option('--images <files...>', 'image files (JPEG/PNG/WebP)')
    .option('--texts <texts...>', 'texts to embed')
    .requiredOption('--out <file>', 'output file: .safetensors (tensor "embeddings" [N, D]) or .json')
    .option('--batch-size <n>', 'inputs per forward pass', positiveInt('--batch-size'), 32)
    .option('--backend <name>', 'tfjs backend (default: $CLIP_BACKEND or auto)', backendArg)
    .option('--threads <n>', THREADS_HELP, threadsArg)
    .option('--workers <n|auto>', WORKERS_HELP, workersArg)
    .option('--decoder <name>', DECODER_HELP, decoderArg)
    .option('--json', 'print the result as one JSON object on stdout')
    .action(async (o: EmbedOptions & { json?: boolean }) => {
      const result = await runEmbed(o, io);
      if (o.json) writeJson(io, result);
      else io.stdout(`wrote ${result.count} ${result.kind} embeddings of dimension ${result.dim} to ${result.out}\n`);
    });
}
