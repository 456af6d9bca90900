/**
 * Tiny Hugging Face–layout checkpoints generated on the fly, standing in for the pretrained towers in
 * `--dry-run`: the same files a user downloads (config.json + model.safetensors, and for the text tower
 * tokenizer.json + tokenizer_config.json), the same key layouts (ViTModel keys un-prefixed with a pooler,
 * as google/vit-base-patch16-224-in21k; DistilBertForMaskedLM keys under `distilbert.`, as
 * distilbert-base-uncased), built with the towers' own from-scratch initialisation.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createImageEncoder, createTextEncoder, tensorToWritable, type Encoder, type WritableTensor } from '@clip-ts/core';
import { writeSafetensors } from '@clip-ts/core/node';
import '@clip-ts/encoders';
import { bundledTokenizerFile } from '@clip-ts/cli';

async function saveTower(dir: string, tower: Encoder<never> | Encoder<tf.Tensor4D> | Encoder<{ inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D }>, config: Record<string, unknown>, prefix: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const state = tower.stateDict();
  const tensors = new Map<string, WritableTensor>();
  try {
    for (const [k, t] of state) tensors.set(prefix + k, tensorToWritable(t));
  } finally {
    tf.dispose([...state.values()]);
    tower.dispose();
  }
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** A ViT like vit-base-patch16-224-in21k but tiny: `imageSize` px, patch 8, hidden 32, 2 layers. */
export async function writeTinyViT(dir: string, imageSize = 32, seed = 1): Promise<string> {
  const config = {
    architectures: ['ViTModel'],
    model_type: 'vit',
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    intermediate_size: 64,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0,
    attention_probs_dropout_prob: 0,
    initializer_range: 0.02,
    layer_norm_eps: 1e-12,
    image_size: imageSize,
    patch_size: 8,
    num_channels: 3,
    qkv_bias: true,
  };
  const tower = createImageEncoder({ ...config, add_pooling_layer: true }, { seed });
  await saveTower(dir, tower, config, '');
  // ViTImageProcessor config as shipped with the in21k checkpoint (mean = std = 0.5; the reference overrides it).
  await writeFile(
    join(dir, 'preprocessor_config.json'),
    `${JSON.stringify({ do_normalize: true, do_resize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 2, size: imageSize }, null, 2)}\n`,
  );
  return dir;
}

/** A DistilBERT like distilbert-base-uncased but tiny: dim 32, 2 layers, the real 30522-word tokenizer. */
export async function writeTinyDistilBert(dir: string, seed = 2): Promise<string> {
  const config = {
    architectures: ['DistilBertForMaskedLM'],
    model_type: 'distilbert',
    vocab_size: 30522,
    max_position_embeddings: 64,
    sinusoidal_pos_embds: false,
    n_layers: 2,
    n_heads: 4,
    dim: 32,
    hidden_dim: 64,
    dropout: 0.1,
    attention_dropout: 0.1,
    activation: 'gelu',
    initializer_range: 0.02,
    pad_token_id: 0,
  };
  const tower = createTextEncoder(config, { seed });
  await saveTower(dir, tower, config, 'distilbert.');
  await copyFile(bundledTokenizerFile(), join(dir, 'tokenizer.json'));
  await writeFile(join(dir, 'tokenizer_config.json'), `${JSON.stringify({ do_lower_case: true, model_max_length: 512 }, null, 2)}\n`);
  return dir;
}
