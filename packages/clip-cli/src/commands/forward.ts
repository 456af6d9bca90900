import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import {
  describeBackend,
  initBackend,
  tensorToWritable,
  ValueError,
  type BackendName,
  type TensorData,
  type WritableTensor,
} from '@clip-ts/core';
import { readSafetensors, writeSafetensors } from '@clip-ts/core/node';
import { loadEncoderFromDir } from '@clip-ts/encoders/node';
import type { CliIO } from '../cli.js';
import { backendArg } from '../support/options.js';

interface ForwardOptions {
  model: string;
  inputs: string;
  out: string;
  backend?: BackendName;
}

function input(tensors: Map<string, TensorData>, name: string, file: string, rank: number): tf.Tensor {
  const t = tensors.get(name);
  if (!t) {
    throw new ValueError(`${file}: no tensor '${name}' (it holds: ${[...tensors.keys()].join(', ') || 'nothing'})`);
  }
  if (t.shape.length !== rank) throw new ValueError(`${file}: '${name}' must have rank ${rank}, got shape [${t.shape.join(', ')}]`);
  return tf.tensor(t.data, t.shape, t.dtype);
}

/**
 * `clip forward`: run an HF ViT / DistilBERT checkpoint directory on the inputs in a safetensors file
 * (`pixel_values` NCHW, or `input_ids` + optional `attention_mask`) and write `last_hidden_state`
 * (+ `pooler_output` when the checkpoint has a pooler) as float32 safetensors — the same names and
 * layout as HF's model outputs, so results can be diffed against PyTorch.
 */
export function registerForward(program: Command, io: CliIO): void {
  program
    .command('forward')
    .description('run a Hugging Face ViT/DistilBERT checkpoint on a safetensors file of inputs')
    .requiredOption('--model <dir>', 'HF checkpoint directory (config.json + model.safetensors or a sharded index)')
    .requiredOption('--inputs <file>', 'safetensors with pixel_values [B,C,H,W] or input_ids [B,L] (+ attention_mask)')
    .requiredOption('--out <file>', 'safetensors file to write last_hidden_state (and pooler_output) to, as float32')
    .option('--backend <name>', 'tfjs backend (default $CLIP_BACKEND or auto)', backendArg)
    .action(async (opts: ForwardOptions) => {
      io.stderr(`${describeBackend(await initBackend(opts.backend))}\n`);
      const { tensors } = await readSafetensors(opts.inputs);
      const loaded = await loadEncoderFromDir(opts.model);
      const outputs: Record<string, WritableTensor> = {};
      const owned: tf.Tensor[] = [];
      try {
        if (loaded.kind === 'image') {
          const pixels = input(tensors, 'pixel_values', opts.inputs, 4) as tf.Tensor4D;
          owned.push(pixels);
          const { lastHiddenState, poolerOutput } = loaded.encoder.forward(pixels);
          owned.push(lastHiddenState);
          outputs.last_hidden_state = tensorToWritable(lastHiddenState, 'F32');
          if (poolerOutput) {
            owned.push(poolerOutput);
            outputs.pooler_output = tensorToWritable(poolerOutput, 'F32');
          }
        } else {
          const inputIds = input(tensors, 'input_ids', opts.inputs, 2) as tf.Tensor2D;
          owned.push(inputIds);
          // No attention_mask means every token is real (HF's default).
          const attentionMask = tensors.has('attention_mask')
            ? (input(tensors, 'attention_mask', opts.inputs, 2) as tf.Tensor2D)
            : (tf.onesLike(inputIds) as tf.Tensor2D);
          owned.push(attentionMask);
          const { lastHiddenState } = loaded.encoder.forward({ inputIds, attentionMask });
          owned.push(lastHiddenState);
          outputs.last_hidden_state = tensorToWritable(lastHiddenState, 'F32');
        }
      } finally {
        tf.dispose(owned);
        loaded.encoder.dispose();
      }
      await writeSafetensors(opts.out, outputs, { format: 'pt' });
      const shapes = Object.entries(outputs).map(([k, t]) => `${k} [${t.shape.join(', ')}]`);
      io.stdout(`${opts.out}: ${shapes.join(', ')}\n`);
    });
}
