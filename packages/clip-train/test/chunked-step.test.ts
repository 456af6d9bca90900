import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, type CLIPModel } from '@clip-ts/core';
import type { CaptionBatch } from '@clip-ts/data';
import { parseExperimentConfig } from '../src/config/load.js';
import type { ExperimentConfigInput } from '../src/config/schema.js';
import { buildModel, clipModelTask } from '../src/experiment/model.js';
import { addInto, chunkBounds, chunkedLossAndGrads, type ChunkedStepSpec } from '../src/step/chunked-step.js';
import { clipChunkedSpec } from '../src/step/clip-step.js';
import { findRngs } from '../src/trainer/rng-state.js';
import { tinyConfig } from './helpers/tiny-config.js';

type Dropouts = { vision: number; text: number };

async function tinyModel(loss: 'clip' | 'siglip', dropout: Dropouts): Promise<CLIPModel> {
  const base = tinyConfig('unused');
  const model = base.model as { vision: { config: { model_type: string } }; text: { config: { model_type: string } } };
  const input: ExperimentConfigInput = {
    ...base,
    loss,
    model: {
      ...base.model,
      vision: { config: { ...model.vision.config, hidden_dropout_prob: dropout.vision, attention_probs_dropout_prob: dropout.vision } },
      text: { config: { ...model.text.config, dropout: dropout.text, attention_dropout: dropout.text } },
    },
  };
  return buildModel(parseExperimentConfig(input));
}

/** 7 rows of random pixels and tokens (padded tails); rows 0 and 3 show the same image (grouped targets). */
function makeBatch(seed: number): CaptionBatch {
  const n = 7;
  const mask = Array.from({ length: n }, (_, r) => Array.from({ length: 8 }, (_, c) => (c < 3 + (r % 5) ? 1 : 0)));
  return {
    pixelValues: tf.randomNormal([n, 3, 16, 16], 0, 1, 'float32', seed) as tf.Tensor4D,
    inputIds: tf.tidy(() => tf.mul(tf.randomUniform([n, 8], 1000, 2000, 'int32', seed + 1), tf.tensor2d(mask, [n, 8], 'int32'))) as tf.Tensor2D,
    attentionMask: tf.tensor2d(mask, [n, 8], 'int32'),
    indices: [0, 1, 2, 0, 4, 5, 6],
    captionIndices: new Array(n).fill(0),
    captions: ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
  };
}

function dispose(b: CaptionBatch): void {
  tf.dispose([b.pixelValues, b.inputIds, b.attentionMask]);
}

/**
 * max |a − b| ≤ rtol · max(max |b|, floor). The floor is for gradients that are zero in exact arithmetic
 * (attention key biases: softmax ignores a per-row constant), which hold only summation noise.
 */
function expectClose(got: tf.Tensor, want: tf.Tensor, what: string, rtol: number, floor = 0): void {
  const g = got.dataSync();
  const w = want.dataSync();
  expect(g.length, what).toBe(w.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < w.length; i++) {
    scale = Math.max(scale, Math.abs(w[i] as number));
    worst = Math.max(worst, Math.abs((g[i] as number) - (w[i] as number)));
  }
  expect(worst, `${what}: max abs error ${worst} vs scale ${scale}`).toBeLessThanOrEqual(rtol * Math.max(scale, floor));
}

/** 1e-6 of the largest gradient entry over all tensors. */
function gradFloor(grads: tf.NamedTensorMap): number {
  const peaks = Object.values(grads).map((g) => tf.tidy(() => tf.max(tf.abs(g))));
  const floor = 1e-6 * Math.max(...peaks.map((p) => p.dataSync()[0] as number));
  tf.dispose(peaks);
  return floor;
}

describe.each(['cpu', 'wasm'] as const)('chunked CLIP step on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });
  afterAll(async () => {
    await initBackend('cpu');
  });

  it.each([
    ['clip', 'diagonal', 3],
    ['clip', 'auto', 2],
    ['siglip', 'auto', 3],
  ] as const)('%s loss (targets %s, chunks of %i): same loss and gradients as the whole batch', async (loss, targets, micro) => {
    const model = await tinyModel(loss, { vision: 0, text: 0 });
    const batch = makeBatch(11);
    const variables = model.trainableVariables();
    const task = clipModelTask(model, { vision: false, text: false }, targets);
    const whole = tf.variableGrads(() => task.trainLoss(batch), variables);
    const chunked = chunkedLossAndGrads(clipChunkedSpec(model, { vision: false, text: false }, targets), batch, variables, micro);
    expectClose(chunked.value, whole.value, 'loss', 1e-5);
    expect(Object.keys(chunked.grads).sort()).toEqual(Object.keys(whole.grads).sort());
    // Every tower weight, both heads and the scale (and SigLIP's bias) get a gradient.
    expect(Object.keys(whole.grads)).toHaveLength(variables.length);
    const floor = gradFloor(whole.grads);
    for (const [name, g] of Object.entries(whole.grads)) expectClose(chunked.grads[name] as tf.Tensor, g, name, 1e-5, floor);
    tf.dispose([whole.value, chunked.value, ...Object.values(whole.grads), ...Object.values(chunked.grads)]);
    dispose(batch);
    model.dispose();
  });

  it('a frozen vision tower is not recomputed and gets no gradient; the rest matches the whole batch', async () => {
    const model = await tinyModel('clip', { vision: 0, text: 0 });
    model.imageEncoder.freeze();
    const batch = makeBatch(12);
    const variables = model.trainableVariables();
    const frozen = { vision: true, text: false };
    const whole = tf.variableGrads(() => clipModelTask(model, frozen).trainLoss(batch), variables);
    const spec = clipChunkedSpec(model, frozen);
    let visionCalls = 0;
    const counted: ChunkedStepSpec<CaptionBatch> = {
      ...spec,
      towers: [{ ...spec.towers[0]!, forward: (b, s, e) => ((visionCalls += 1), spec.towers[0]!.forward(b, s, e)) }, spec.towers[1]!],
    };
    const chunked = chunkedLossAndGrads(counted, batch, variables, 4);
    expect(visionCalls).toBe(2); // pass (i) only: two chunks
    expect(Object.keys(chunked.grads).some((n) => model.imageEncoder.namedVariables().some((nv) => nv.variable.name === n))).toBe(false);
    expectClose(chunked.value, whole.value, 'loss', 1e-5);
    const floor = gradFloor(whole.grads);
    for (const [name, g] of Object.entries(whole.grads)) expectClose(chunked.grads[name] as tf.Tensor, g, name, 1e-5, floor);
    tf.dispose([whole.value, chunked.value, ...Object.values(whole.grads), ...Object.values(chunked.grads)]);
    dispose(batch);
    model.dispose();
  });

  it('with dropout on, the recomputation draws the same masks as the first pass; generators end where pass (i) left them', async () => {
    const model = await tinyModel('clip', { vision: 0.3, text: 0.3 });
    const batch = makeBatch(13);
    const spec = clipChunkedSpec(model, { vision: false, text: false });
    const calls: Array<{ tower: number; start: number; values: Float32Array }> = [];
    const recording: ChunkedStepSpec<CaptionBatch> = {
      ...spec,
      towers: spec.towers.map((t, tower) => ({
        ...t,
        forward: (b: CaptionBatch, s: number, e: number) => {
          const out = t.forward(b, s, e);
          calls.push({ tower, start: s, values: out.dataSync().slice() as Float32Array });
          return out;
        },
      })),
    };
    const rngs = findRngs(model);
    const before = rngs.map((r) => r.state);
    const { value, grads } = chunkedLossAndGrads(recording, batch, model.trainableVariables(), 3);
    tf.dispose([value, ...Object.values(grads)]);
    const bounds = chunkBounds(7, 3);
    expect(calls).toHaveLength(2 * bounds.length * 2); // passes (i) and (iii), both towers, 3 chunks
    const first = calls.slice(0, calls.length / 2);
    const again = calls.slice(calls.length / 2);
    for (let k = 0; k < first.length; k++) {
      expect([again[k]!.tower, again[k]!.start]).toEqual([first[k]!.tower, first[k]!.start]);
      expect(Array.from(again[k]!.values)).toEqual(Array.from(first[k]!.values));
    }
    const after = rngs.map((r) => r.state);
    // The same chunks run once more WITHOUT restoring the generators draw other masks: dropout really is on.
    const other = spec.towers[1]!.forward(batch, 0, 3);
    expect(Array.from(other.dataSync())).not.toEqual(Array.from(first.find((c) => c.tower === 1 && c.start === 0)!.values));
    other.dispose();
    // Pass (i) alone advances the generators exactly as the whole step did.
    rngs.forEach((r, i) => (r.state = before[i] as number));
    for (const [s, e] of bounds) for (const t of spec.towers) t.forward(batch, s, e).dispose();
    expect(rngs.map((r) => r.state)).toEqual(after);
    dispose(batch);
    model.dispose();
  });

  it('leaks no tensor over repeated steps (task.lossAndGrads with microBatch)', async () => {
    const model = await tinyModel('siglip', { vision: 0.1, text: 0.1 });
    const task = clipModelTask(model, { vision: false, text: false }, 'auto', { microBatch: 2 });
    const variables = model.trainableVariables();
    const step = () => {
      const batch = makeBatch(14);
      const { value, grads } = task.lossAndGrads!(batch, variables);
      tf.dispose([value, ...Object.values(grads)]);
      dispose(batch);
    };
    step();
    const start = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });
});

describe.each(['cpu', 'wasm'] as const)('addInto on %s', (backend) => {
  it('sums in place with no extra tensor (the bits of tf.add); a sum another tensor shares is replaced, the sharer keeps its value', async () => {
    await initBackend(backend);
    const a = tf.randomNormal([1001], 0, 1, 'float32', 1);
    const b = tf.randomNormal([7], 0, 1, 'float32', 2);
    const want = tf.tidy(() => [tf.add(a, tf.randomNormal([1001], 0, 1, 'float32', 3)), tf.add(b, tf.randomNormal([7], 0, 1, 'float32', 4))]);
    const shared = tf.reshape(b, [7, 1]);
    const bBefore = Array.from(b.dataSync());
    const before = tf.memory().numTensors;
    const profile = await tf.profile(() => {
      const sums = addInto({ a, b }, { a: tf.randomNormal([1001], 0, 1, 'float32', 3), b: tf.randomNormal([7], 0, 1, 'float32', 4), c: tf.ones([2]) });
      expect(sums.a).toBe(a);
      expect(sums.b).not.toBe(b);
      expect(Array.from(sums.a!.dataSync())).toEqual(Array.from(want[0]!.dataSync()));
      expect(Array.from(sums.b!.dataSync())).toEqual(Array.from(want[1]!.dataSync()));
      tf.dispose(Object.values(sums));
    });
    // Only the inputs' random draws, the ones and the shared sum's tf.add ran.
    expect(profile.kernels.filter((k) => k.name === 'Add')).toHaveLength(1);
    expect(tf.memory().numTensors).toBe(before - 2);
    expect(shared.isDisposed).toBe(false);
    expect(Array.from(shared.dataSync())).toEqual(bBefore);
    tf.dispose([shared, ...want]);
  });
});

describe('chunkBounds', () => {
  it('covers the rows in order with chunks of the given size, the last one shorter', () => {
    expect(chunkBounds(7, 3)).toEqual([[0, 3], [3, 6], [6, 7]]);
    expect(chunkBounds(4, 8)).toEqual([[0, 4]]);
    expect(() => chunkBounds(4, 0)).toThrow(RangeError);
  });
});
