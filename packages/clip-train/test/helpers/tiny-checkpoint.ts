import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIPModel } from '@clip-ts/core';
import '@clip-ts/encoders';
import { saveCheckpointAssets } from '../../src/experiment/checkpoint-assets.js';
import { TOKENIZER } from './tiny-config.js';
import { saveCLIPModel } from '@clip-ts/core/node';

/** Config of a tiny random CLIP (16×16 images, the real 30522-word vocabulary, 16-d everything). */
export const TINY_CLIP_CONFIG = {
  model_type: 'clip-ts',
  projection_dim: 8,
  vision_config: { model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 },
  text_config: { model_type: 'distilbert', dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 32 },
};

/** A complete checkpoint directory (weights + tokenizer + preprocessing) of a tiny random model. */
export async function writeTinyCheckpoint(dir?: string, seed = 1): Promise<string> {
  const out = dir ?? (await mkdtemp(join(tmpdir(), 'clip-ckpt-')));
  const model = CLIPModel.fromConfig(TINY_CLIP_CONFIG, { seed });
  try {
    await saveCLIPModel(model, out);
  } finally {
    model.dispose();
  }
  await saveCheckpointAssets(out, { tokenizerFile: TOKENIZER, maxLength: 16, imageProcessor: { height: 16, width: 16 } });
  return out;
}
