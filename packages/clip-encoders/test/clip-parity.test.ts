import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { clipLoss, initBackend, type TensorData } from '@clip-ts/core';
import { CLIPTextModel, CLIPVisionModel } from '@clip-ts/encoders';
import { loadHFCLIPModel } from '@clip-ts/encoders/node';
import { BACKENDS, fixtureDir, maxAbsDiff, readIO, toTensor } from './helpers.js';

// Tolerances from the fixtures' README: float32 against a float64 reference; ≤ 1e-4 abs on hidden states
// and embeddings, ≤ 1e-5 relative on logits (scaled by exp(logit_scale) = 100 / 30) and the loss.
const TOL = 1e-4;
const REL = 1e-5;

/** max |a - b| / max |b|. */
function maxRelDiff(a: tf.Tensor, b: TensorData): number {
  const scale = Math.max(...Array.from(b.data, (v) => Math.abs(v)));
  return maxAbsDiff(a, b) / scale;
}

const FIXTURES = [
  { name: 'clip-tiny', eosRule: 'argmax', logitScale: Math.log(100) }, // legacy eos_token_id 2, F32, quick_gelu
  { name: 'clip-tiny-gelu', eosRule: 'first eos', logitScale: 3.4004 }, // eos_token_id 49407, F16, gelu
];

describe.each(BACKENDS)('HF CLIPModel parity on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });
  afterAll(() => {
    tf.disposeVariables();
  });

  it.each(FIXTURES)('$name ($eosRule pooling): towers, embeds, logits and loss', async ({ name, logitScale }) => {
    const io = await readIO(name);
    const get = (k: string): TensorData => {
      const t = io.get(k);
      if (!t) throw new Error(`${name}/io.safetensors has no ${k}`);
      return t;
    };
    const model = await loadHFCLIPModel(fixtureDir(name));
    expect(model.visualProjection.kind).toBe('linear-no-bias');
    expect(model.imageEncoder).toBeInstanceOf(CLIPVisionModel);
    expect(model.textEncoder).toBeInstanceOf(CLIPTextModel);
    // The stored value, not the config's logit_scale_init_value (2.6592).
    expect(model.logitScale.dataSync()[0]).toBeCloseTo(logitScale, 3);

    const before = tf.memory().numTensors;
    const pixelValues = toTensor(get('pixel_values')) as tf.Tensor4D;
    const inputIds = toTensor(get('input_ids')) as tf.Tensor2D;
    const attentionMask = toTensor(get('attention_mask')) as tf.Tensor2D;
    const text = { inputIds, attentionMask };

    const visionEmb = (model.imageEncoder as CLIPVisionModel).embeddings(pixelValues);
    expect(maxAbsDiff(visionEmb, get('vision_embeddings'))).toBeLessThan(TOL);
    const textEmb = (model.textEncoder as CLIPTextModel).embeddings(text);
    expect(maxAbsDiff(textEmb, get('text_embeddings'))).toBeLessThan(TOL);
    const vision = (model.imageEncoder as CLIPVisionModel).forward(pixelValues);
    expect(maxAbsDiff(vision.lastHiddenState, get('vision_last_hidden_state'))).toBeLessThan(TOL);
    expect(maxAbsDiff(vision.poolerOutput, get('vision_pooler_output'))).toBeLessThan(TOL);
    const textTower = model.textEncoder as CLIPTextModel;
    const textOut = textTower.forward(text);
    expect(maxAbsDiff(textOut.lastHiddenState, get('text_last_hidden_state'))).toBeLessThan(TOL);
    expect(maxAbsDiff(textOut.poolerOutput, get('text_pooler_output'))).toBeLessThan(TOL);
    const eos = textTower.eosIndices(inputIds);
    expect(Array.from(eos.dataSync())).toEqual(Array.from(get('text_eos_index').data));

    // get_image_features / get_text_features: the projections, not normalised.
    const imageEmbeds = tf.tidy(() => model.visualProjection.apply(model.imageEncoder.encode(pixelValues)));
    const textEmbeds = tf.tidy(() => model.textProjection.apply(model.textEncoder.encode(text)));
    expect(maxAbsDiff(imageEmbeds, get('image_embeds'))).toBeLessThan(TOL);
    expect(maxAbsDiff(textEmbeds, get('text_embeds'))).toBeLessThan(TOL);
    const imageNorm = model.encodeImages(pixelValues);
    const textNorm = model.encodeTexts(text);
    expect(maxAbsDiff(imageNorm, get('image_embeds_normalized'))).toBeLessThan(TOL);
    expect(maxAbsDiff(textNorm, get('text_embeds_normalized'))).toBeLessThan(TOL);

    const { logitsPerImage, logitsPerText } = model.logits(pixelValues, text);
    expect(maxRelDiff(logitsPerImage, get('logits_per_image'))).toBeLessThan(REL);
    expect(maxRelDiff(logitsPerText, get('logits_per_text'))).toBeLessThan(REL);
    const loss = model.loss({ pixelValues, inputIds, attentionMask });
    const viaClipLoss = clipLoss(imageEmbeds, textEmbeds, model.logitScale);
    const want = get('loss').data[0] as number;
    expect(get('loss').shape).toEqual([]);
    for (const l of [loss, viaClipLoss]) expect(Math.abs((l.dataSync()[0] as number) - want) / Math.abs(want)).toBeLessThan(REL);

    tf.dispose([visionEmb, textEmb, pixelValues, inputIds, attentionMask, vision, textOut, eos, imageEmbeds, textEmbeds, imageNorm, textNorm]);
    tf.dispose([logitsPerImage, logitsPerText, loss, viaClipLoss]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('clip-tiny: the padding mask only changes the padded rows (causal attention)', async () => {
    const io = await readIO('clip-tiny');
    const model = await loadHFCLIPModel(fixtureDir('clip-tiny'));
    const tower = model.textEncoder as CLIPTextModel;
    const inputIds = toTensor(io.get('input_ids')) as tf.Tensor2D;
    const mask = toTensor(io.get('attention_mask')) as tf.Tensor2D;
    const ones = tf.onesLike(mask);
    const masked = tower.forward({ inputIds, attentionMask: mask });
    const unmasked = tower.forward({ inputIds, attentionMask: ones });
    // Row 0 has 8 real tokens of 9: under the causal mask, real rows never see the padding.
    const rows = (t: tf.Tensor3D, from: number, size: number): tf.Tensor => tf.slice(t, [0, from, 0], [1, size, -1]);
    expect(maxAbsDiff(rows(masked.lastHiddenState, 0, 8), rows(unmasked.lastHiddenState, 0, 8))).toBeLessThan(1e-6);
    expect(maxAbsDiff(rows(masked.lastHiddenState, 8, 1), rows(unmasked.lastHiddenState, 8, 1))).toBeGreaterThan(1e-3);
    // ...and the padded row is HF's (masked keys at float32 min) only with the mask.
    const ref = toTensor(io.get('text_last_hidden_state')) as tf.Tensor3D;
    expect(maxAbsDiff(rows(masked.lastHiddenState, 8, 1), rows(ref, 8, 1))).toBeLessThan(TOL);
    tf.dispose([inputIds, mask, ones, masked, unmasked, ref]);
    model.dispose();
  });
});
