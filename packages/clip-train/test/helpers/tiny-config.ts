import { fileURLToPath } from 'node:url';
import type { ExperimentConfigInput } from '../../src/config/schema.js';

// The real bert-base-uncased tokenizer vendored by @clip-ts/encoders' tests (the bundled copy ships with
// @clip-ts/cli, which train must not depend on).
export const TOKENIZER = fileURLToPath(new URL('../../../clip-encoders/test/fixtures/tokenizer/tokenizer.json', import.meta.url));

/** A CLIP small enough for tests: 1-layer ViT (16 px, hidden 16) and DistilBERT (dim 16), shapes data, seq 8. */
export function tinyConfig(runDir: string, overrides: Partial<ExperimentConfigInput> = {}): ExperimentConfigInput {
  return {
    seed: 3,
    backend: 'cpu',
    model: {
      vision: { config: { model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 } },
      text: { config: { model_type: 'distilbert', dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 8, dropout: 0, attention_dropout: 0 } },
      projectionDim: 8,
    },
    data: {
      dataset: { kind: 'shapes', options: { seed: 5, imageSize: 16, trainSize: 24, valSize: 8, testSize: 8 } },
      tokenizer: TOKENIZER,
      maxLength: 8,
      batchSize: 8,
      imageSize: 16,
    },
    optim: { lr: 3e-3 },
    schedule: { epochs: 2 },
    output: { runDir },
    ...overrides,
  };
}
