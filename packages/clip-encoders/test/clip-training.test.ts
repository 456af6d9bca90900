import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { CLIPModel } from '@clip-ts/core';
import { CLIPTextModel, CLIPVisionModel } from '@clip-ts/encoders';
import { expectSameGradients, gradientsOn } from './helpers.js';

/**
 * One training step's gradients on wasm must equal cpu's (as test/training.test.ts does for ViT and
 * DistilBERT): every backward kernel the CLIP towers use, incl. the token-embedding gather, the causal
 * mask and quick_gelu, plus HF's bias-free heads and logit_scale through the CLIP loss.
 */
const VISION = { model_type: 'clip_vision_model', hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 24, image_size: 8, patch_size: 4 };
const TEXT = { model_type: 'clip_text_model', vocab_size: 60, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 24, max_position_embeddings: 8, eos_token_id: 59, hidden_act: 'gelu' };

const pixels = (): tf.Tensor4D => tf.tidy(() => tf.sin(tf.reshape(tf.range(0, 2 * 3 * 64), [2, 3, 8, 8])) as tf.Tensor4D);
const text = () => ({
  inputIds: tf.tensor2d([[58, 5, 9, 59, 59, 59], [58, 12, 59, 59, 59, 59]], [2, 6], 'int32'),
  attentionMask: tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], [2, 6], 'int32'),
});

function makeModel(): CLIPModel {
  return new CLIPModel({
    imageEncoder: new CLIPVisionModel(VISION, { seed: 21 }),
    textEncoder: new CLIPTextModel(TEXT, { seed: 22 }),
    projectionDim: 8,
    head: 'linear-no-bias',
    seed: 23,
  });
}

describe('one CLIP training step on wasm matches cpu', () => {
  it('vision tower', async () => {
    const build = () => {
      const tower = new CLIPVisionModel(VISION, { seed: 11 });
      const x = pixels();
      return { vars: tower.namedVariables(), loss: () => tf.sum(tower.encode(x)) as tf.Scalar, dispose: () => (tower.dispose(), x.dispose()) };
    };
    const cpu = await gradientsOn('cpu', build);
    expectSameGradients(await gradientsOn('wasm', build), cpu, 7 + 2 * 16, { nonZero: true });
  });

  it('text tower: gradient reaches exactly the tokens at or before the EOS (causal mask)', async () => {
    const build = () => {
      const tower = new CLIPTextModel(TEXT, { seed: 12 });
      const t = text();
      return { vars: tower.namedVariables(), loss: () => tf.sum(tower.encode(t)) as tf.Scalar, dispose: () => (tower.dispose(), tf.dispose(t)) };
    };
    const cpu = await gradientsOn('cpu', build);
    const wasm = await gradientsOn('wasm', build);
    expectSameGradients(wasm, cpu, 4 + 2 * 16, { nonZero: true });
    const g = wasm.get('embeddings.token_embedding.weight')!;
    const rows: number[] = [];
    for (let r = 0; r < 60; r++) if (g.slice(r * 16, (r + 1) * 16).some((v) => v !== 0)) rows.push(r);
    // Pooled at the first 59 of each row; the 59s after it (padding) are invisible to it.
    expect(rows).toEqual([5, 9, 12, 58, 59]);
    const pos = wasm.get('embeddings.position_embedding.weight')!;
    const posRows = [...Array(8).keys()].filter((r) => pos.slice(r * 16, (r + 1) * 16).some((v) => v !== 0));
    expect(posRows).toEqual([0, 1, 2, 3]);
  });

  it('CLIPModel loss with HF heads (bias-free projections, logit_scale), training mode', async () => {
    const build = () => {
      const model = makeModel();
      const px = pixels();
      const t = text();
      return {
        vars: model.namedVariables(),
        loss: () => model.loss({ pixelValues: px, ...t }, { training: true }),
        dispose: () => (model.dispose(), tf.dispose([px, t])),
      };
    };
    const cpu = await gradientsOn('cpu', build);
    expectSameGradients(await gradientsOn('wasm', build), cpu, 7 + 2 * 16 + 4 + 2 * 16 + 2 + 1, { nonZero: true });
  });
});
