import * as path from 'node:path';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import {
  CheckpointError,
  ConfigError,
  describeBackend,
  initBackend,
  tensorToWritable,
  ValueError,
  type BackendName,
  type TensorData,
  type WritableTensor,
} from '@clip-ts/core';
import { readSafetensors, writeSafetensors } from '@clip-ts/core/node';
import { loadEncoderFromDir, loadHFCLIPModel, readJson } from '@clip-ts/encoders/node';
import type { CliIO } from '../cli.js';
import { clipForwardOutputs } from '../support/clip-forward.js';
import { THREADS_HELP, backendArg, threadsArg } from '../support/options.js';

interface ForwardOptions {
  model: string;
  inputs: string;
  out: string;
  backend?: BackendName;
  threads?: number;
}

function input(tensors: Map<string, TensorData>, name: string, file: string, rank: number): tf.Tensor {
  const t = tensors.get(name);
  if (!t) {
    throw new ValueError(`${file}: no tensor '${name}' (it holds: ${[...tensors.keys()].join(', ') || 'nothing'})`);
  }
  if (t.shape.length !== rank) throw new ValueError(`${file}: '${name}' must have rank ${rank}, got shape [${t.shape.join(', ')}]`);
  return tf.tensor(t.data, t.shape, t.dtype);
}

/** No attention_mask means every token is real (HF's default). */
function textInputs(tensors: Map<string, TensorData>, file: string, owned: tf.Tensor[]): { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D } {
  const inputIds = input(tensors, 'input_ids', file, 2) as tf.Tensor2D;
  owned.push(inputIds);
  const attentionMask = tensors.has('attention_mask') ? (input(tensors, 'attention_mask', file, 2) as tf.Tensor2D) : (tf.onesLike(inputIds) as tf.Tensor2D);
  owned.push(attentionMask);
  return { inputIds, attentionMask };
}

/** An HF CLIPModel repo (config.json `model_type: clip`) on pixel_values + input_ids (+ attention_mask). */
async function forwardCLIP(dir: string, tensors: Map<string, TensorData>, file: string): Promise<Record<string, WritableTensor>> {
  const model = await loadHFCLIPModel(dir);
  const owned: tf.Tensor[] = [];
  try {
    const pixels = input(tensors, 'pixel_values', file, 4) as tf.Tensor4D;
    owned.push(pixels);
    return clipForwardOutputs(model, pixels, textInputs(tensors, file, owned));
  } finally {
    tf.dispose(owned);
    model.dispose();
  }
}

/**
 * `clip forward`: run an HF checkpoint directory on the inputs in a safetensors file and write its
 * outputs as float32 safetensors under HF's names, so results can be diffed against PyTorch. ViT /
 * DistilBERT / CLIPVisionModel / CLIPTextModel repos take `pixel_values` NCHW or `input_ids` + optional
 * `attention_mask` and give `last_hidden_state` (+ `pooler_output` when the tower has one); a whole
 * CLIPModel repo takes both and gives the outputs listed at clipForwardOutputs.
 */
export function registerForward(program: Command, io: CliIO): void {
  program
    .command('forward')
    .description('run a Hugging Face ViT/DistilBERT/CLIP checkpoint on a safetensors file of inputs')
    .requiredOption('--model <dir>', 'HF checkpoint directory (config.json + model.safetensors or a sharded index)')
    .requiredOption('--inputs <file>', 'safetensors with pixel_values [B,C,H,W] and/or input_ids [B,L] (+ attention_mask); CLIP needs both')
    .requiredOption('--out <file>', 'safetensors file to write the outputs to (last_hidden_state, pooler_output; CLIP: text_embeds, image_embeds, logits_per_image, ...), as float32')
    .option('--backend <name>', 'tfjs backend (default $CLIP_BACKEND or auto)', backendArg)
    .option('--threads <n>', THREADS_HELP, threadsArg)
    .action(async (opts: ForwardOptions) => {
      io.stderr(`${describeBackend(await initBackend(opts.backend, { threads: opts.threads }))}\n`);
      const { tensors } = await readSafetensors(opts.inputs);
      const { value: config } = await readJson(path.join(opts.model, 'config.json'), {
        error: (m, o) => new CheckpointError(m, o),
        invalidError: (m, o) => new ConfigError(m, o),
      });
      const isCLIP = (config as { model_type?: unknown } | null)?.model_type === 'clip';
      const outputs = isCLIP ? await forwardCLIP(opts.model, tensors, opts.inputs) : await forwardTower(opts.model, tensors, opts.inputs);
      await writeSafetensors(opts.out, outputs, { format: 'pt' });
      const shapes = Object.entries(outputs).map(([k, t]) => `${k} [${t.shape.join(', ')}]`);
      io.stdout(`${opts.out}: ${shapes.join(', ')}\n`);
    });
}

/** A single tower (ViT, DistilBERT, CLIP vision or text). */
async function forwardTower(dir: string, tensors: Map<string, TensorData>, file: string): Promise<Record<string, WritableTensor>> {
  const loaded = await loadEncoderFromDir(dir);
  const outputs: Record<string, WritableTensor> = {};
  const owned: tf.Tensor[] = [];
  try {
    if (loaded.kind === 'image') {
      const pixels = input(tensors, 'pixel_values', file, 4) as tf.Tensor4D;
      owned.push(pixels);
      const { lastHiddenState, poolerOutput } = loaded.encoder.forward(pixels);
      owned.push(lastHiddenState);
      outputs.last_hidden_state = tensorToWritable(lastHiddenState, 'F32');
      if (poolerOutput) {
        owned.push(poolerOutput);
        outputs.pooler_output = tensorToWritable(poolerOutput, 'F32');
      }
    } else {
      const out = loaded.encoder.forward(textInputs(tensors, file, owned));
      owned.push(out.lastHiddenState);
      outputs.last_hidden_state = tensorToWritable(out.lastHiddenState, 'F32');
      // CLIP's text tower pools (at the EOS token); DistilBERT has no pooler.
      const pooled = (out as { poolerOutput?: tf.Tensor2D }).poolerOutput;
      if (pooled) {
        owned.push(pooled);
        outputs.pooler_output = tensorToWritable(pooled, 'F32');
      }
    }
  } finally {
    tf.dispose(owned);
    loaded.encoder.dispose();
  }
  return outputs;
}
