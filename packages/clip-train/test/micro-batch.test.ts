import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createImageEncoder, initBackend, type EncoderConfig } from '@clip-ts/core';
import '@clip-ts/encoders';
import { parseExperimentConfig } from '../src/config/load.js';
import { runExperiment } from '../src/experiment/index.js';
import {
  activationBudget,
  activationBytesPerRow,
  checkpointedActivationBytesPerRow,
  chooseMicroBatch,
  optimizerUpdateBytes,
  transformerShape,
  UPDATE_TENSORS,
  WASM_HEAP_BYTES,
  WASM_USABLE_FRACTION,
} from '../src/step/micro-batch-auto.js';
import { autoMicroBatch, CHECKPOINT_ROW_GAIN, resolveMicroBatch } from '../src/step/micro-batch-config.js';
import { AdamOptimizer } from '../src/optim/index.js';
import { setGradientCheckpointing } from '../src/step/checkpointing.js';
import { CLIPModel } from '@clip-ts/core';
import { tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

const tmpDir = useTmpDirs('clip-micro-');
const quiet = { stdout: () => {}, stderr: () => {} };

// The reference's towers, from their HF configs.
const VIT_BASE = { model_type: 'vit', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, image_size: 224, patch_size: 16 };
const DISTILBERT_BASE = { model_type: 'distilbert', dim: 768, n_layers: 6, n_heads: 12, hidden_dim: 3072 };

/**
 * Only what autoMicroBatch reads of a model, sized as ViT-base/16 + DistilBERT-base (bench/tasks.mjs BIG): the
 * tower configs, each tower's weights (86.4 M, 66.4 M; DistilBERT's largest is the 30522×768 embedding) and
 * the heads (2 × 768·256).
 */
function fakeBaseModel(): CLIPModel {
  const vision = [{ size: 85.8e6 - 768 * 3072 }, { size: 768 * 3072 }];
  const text = [{ size: 66.4e6 - 30522 * 768 }, { size: 30522 * 768 }];
  const heads = [{ size: 768 * 256 }, { size: 768 * 256 }];
  const tower = (config: object, vars: Array<{ size: number }>) => ({ getConfig: () => config, gradientCheckpointing: false, trainableVariables: () => vars });
  const all = [...vision, ...text, ...heads];
  return {
    imageEncoder: tower(VIT_BASE, vision),
    textEncoder: tower({ ...DISTILBERT_BASE, model_type: 'distilbert' }, text),
    trainableVariables: () => all,
    namedVariables: () => all.map((variable) => ({ variable })),
  } as unknown as CLIPModel;
}

describe("training.microBatch: 'auto'", () => {
  it('reads the tower shapes from ViT and DistilBERT configs; a config without them is unknown', () => {
    expect(transformerShape(VIT_BASE, 'image', 40)).toEqual({ seq: 197, hidden: 768, layers: 12, heads: 12, intermediate: 3072, pixels: 3 * 224 * 224 });
    expect(transformerShape(DISTILBERT_BASE, 'text', 40)).toEqual({ seq: 40, hidden: 768, layers: 6, heads: 12, intermediate: 3072, pixels: 0 });
    expect(transformerShape({ model_type: 'resnet', hidden_sizes: [64] } as EncoderConfig, 'image', 40)).toBeUndefined();
  });

  it('the estimate bounds what the tfjs tape really holds per row (tf.profile), by at most 2×', async () => {
    await initBackend('cpu');
    const config = { model_type: 'vit', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 128, image_size: 32, patch_size: 4, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 };
    const enc = createImageEncoder(config, { seed: 1 });
    const measured = await tapeBytesPerRow(enc);
    const estimate = activationBytesPerRow(transformerShape(config, 'image', 0)!);
    expect(estimate).toBeGreaterThanOrEqual(measured);
    expect(estimate).toBeLessThanOrEqual(2 * measured);
    enc.dispose();
  });

  it('with gradient checkpointing the estimate bounds the tape per row too (tf.profile), by at most 2×, and is far smaller', async () => {
    await initBackend('cpu');
    const config = { model_type: 'vit', hidden_size: 32, num_hidden_layers: 6, num_attention_heads: 2, intermediate_size: 128, image_size: 32, patch_size: 4, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 };
    const enc = createImageEncoder(config, { seed: 1 });
    expect(setGradientCheckpointing({ imageEncoder: enc, textEncoder: {} } as unknown as CLIPModel, ['vision'], true)).toEqual(['vision']);
    const measured = await tapeBytesPerRow(enc);
    const shape = transformerShape(config, 'image', 0)!;
    const estimate = checkpointedActivationBytesPerRow(shape);
    expect(estimate).toBeGreaterThanOrEqual(measured);
    expect(estimate).toBeLessThanOrEqual(2 * measured);
    expect(estimate).toBeLessThan(0.5 * activationBytesPerRow(shape));
    enc.dispose();
  });

  it('keeps the whole batch when it fits, else the largest chunk that does (at least 1 row)', () => {
    const small = { backend: 'wasm', weightBytes: 1e6, trainableBytes: 1e6, optimizerSlots: 2 };
    expect(chooseMicroBatch(32, [1e6, 1e6], small).microBatch).toBe(32);
    const left = activationBudget(small);
    expect(left).toBeCloseTo(WASM_USABLE_FRACTION * WASM_HEAP_BYTES - 4e6);
    // Each tower alone needs left/5 per row (with the gradient sum): 4 rows of one tower fit, 32 of both do not.
    const perRow = (left - small.trainableBytes) / 4.5;
    const choice = chooseMicroBatch(32, [perRow, perRow / 2], small);
    expect(choice.microBatch).toBe(4);
    expect(choice.reason).toMatch(/^4 rows of 32 \(auto: .* on wasm/);
    expect(chooseMicroBatch(32, [1e12], small).microBatch).toBe(1);
    expect(chooseMicroBatch(32, [undefined], small).microBatch).toBe(32);
  });

  it('ViT-base/16 + DistilBERT-base at batch 32 with Adam on wasm does not run as one batch', () => {
    const weights = 152e6 * 4;
    const choice = chooseMicroBatch(
      32,
      [activationBytesPerRow(transformerShape(VIT_BASE, 'image', 40)!), activationBytesPerRow(transformerShape(DISTILBERT_BASE, 'text', 40)!)],
      { backend: 'wasm', weightBytes: weights, trainableBytes: weights, optimizerSlots: 2 },
    );
    expect(choice.microBatch).toBeLessThan(32);
  });

  it("turns gradient checkpointing on for the reference's towers on wasm, and moves Adam's moments to the host, when the config leaves them unset", () => {
    const model = fakeBaseModel();
    const config = (training: object, optim: object = {}) =>
      parseExperimentConfig(tinyConfig('x', { training, optim: { lr: 1e-4, ...optim }, data: { ...tinyConfig('x').data, batchSize: 32, maxLength: 40 } }));
    const both = { vision: false, text: false };
    // With the moments on the heap (1.2 GB) not even one checkpointed row fits.
    const device = resolveMicroBatch(config({}, { stateOnHost: false }), model, both, 'wasm');
    expect(device).toMatchObject({ microBatch: 1, overBudget: true, gradientCheckpointing: true, stateOnHost: false });
    // Unset: the moments go to JS memory, and checkpointed chunks of several rows fit.
    const auto = resolveMicroBatch(config({}), model, both, 'wasm');
    expect(auto).toMatchObject({ gradientCheckpointing: true, stateOnHost: true });
    expect(auto.overBudget).toBeUndefined();
    expect(auto.microBatch).toBeGreaterThanOrEqual(CHECKPOINT_ROW_GAIN);
    expect(auto.reason).toMatch(/gradient checkpointing \(auto: 1 row would not fit without it\); Adam's moments in JS memory \(optim\.stateOnHost auto: with them on the wasm heap not even 1 row would fit\)/);
    // The same as setting it.
    expect(resolveMicroBatch(config({}, { stateOnHost: true }), model, both, 'wasm')).toMatchObject({ microBatch: auto.microBatch, stateOnHost: true });
    // Only wasm has a heap of its own: elsewhere auto keeps the moments on the backend.
    expect(resolveMicroBatch(config({}), model, both, 'cpu').stateOnHost).toBe(false);
    // A chunk size given by hand still gets the planned place of the moments.
    expect(resolveMicroBatch(config({ microBatch: 2 }), model, both, 'wasm')).toMatchObject({ microBatch: 2, stateOnHost: true });
    // Off when asked, and then 1 plain row is still over the budget even with the moments on the host.
    const off = resolveMicroBatch(config({ gradientCheckpointing: false }), model, both, 'wasm');
    expect(off).toMatchObject({ microBatch: 1, overBudget: true, gradientCheckpointing: false });
    // With the text tower frozen DistilBERT-base... the vision tower alone: fewer trained weights, more rows.
    const visionOnly = resolveMicroBatch(config({}), model, { vision: false, text: true }, 'wasm');
    expect(visionOnly.microBatch).toBeGreaterThanOrEqual(auto.microBatch);
    // Forced on, the chunk is estimated for checkpointed towers.
    const on = resolveMicroBatch(config({ gradientCheckpointing: true }), model, { vision: true, text: false }, 'wasm');
    expect(on.gradientCheckpointing).toBe(true);
    expect(on.microBatch).toBe(32);
  });

  it("counts the optimizer update's transients: the new storage of one weight for the fused Adam (wasm, cpu), UPDATE_TENSORS × the largest weight otherwise", () => {
    const emb = 4 * 30522 * 768;
    expect(optimizerUpdateBytes({ name: 'adam' }, 'wasm', emb)).toBe(emb);
    expect(optimizerUpdateBytes({ name: 'adamw' }, 'cpu', emb)).toBe(emb);
    expect(optimizerUpdateBytes({ name: 'adam' }, 'webgl', emb)).toBe(UPDATE_TENSORS.adam * emb);
    expect(optimizerUpdateBytes({ name: 'adam', stateOnHost: true }, 'wasm', emb)).toBe(emb);
    expect(optimizerUpdateBytes({ name: 'sgd' }, 'wasm', emb)).toBe(UPDATE_TENSORS.sgd * emb);
    // The reference pair with the same 4 GB on a backend without the fused update: 15 × 94 MB less room, a smaller chunk.
    const model = fakeBaseModel();
    const plan = (backend: string) => autoMicroBatch(model, { vision: false, text: false }, { batchSize: 32, maxLength: 40, backend, optim: { name: 'adam' }, capacity: WASM_HEAP_BYTES });
    const fused = plan('wasm');
    const tensors = plan('webgl');
    expect(fused.gradientCheckpointing).toBe(true);
    expect(tensors.microBatch).toBeLessThan(fused.microBatch);
    const perRow = checkpointedActivationBytesPerRow(transformerShape(VIT_BASE, 'image', 40)!);
    expect(fused.microBatch - tensors.microBatch).toBeLessThanOrEqual(Math.ceil((UPDATE_TENSORS.adam * emb) / perRow));
  });

  it('UPDATE_TENSORS.adam bounds what the tensor path holds (tf.profile), and the fused update at most one weight', async () => {
    for (const backend of ['cpu', 'wasm'] as const) {
    await initBackend(backend);
    for (const [kind, wd] of [['adam', 0.05], ['adamw', 0.05], ['adam', 0]] as const) {
      for (const fused of [false, true]) {
        const n = 4096;
        const v = tf.tidy(() => tf.variable(tf.randomNormal([n], 0, 1, 'float32', 1)));
        const g = tf.randomNormal([n], 0, 1, 'float32', 2);
        const opt = new AdamOptimizer([{ name: 'all', lr: 1e-3, weightDecay: wd, params: [{ name: 'w', variable: v, decay: true }] }], { kind, fused });
        opt.applyGradients(new Map([[v, g]]));
        const before = tf.memory().numBytes;
        const profile = await tf.profile(() => opt.applyGradients(new Map([[v, g]])));
        // peakBytes is -Infinity when no kernel ran (nothing was allocated).
        const held = Math.max(0, profile.peakBytes - before) / (4 * n);
        if (fused) expect(held, `${backend} ${kind} wd ${wd} fused`).toBeLessThan(1.01);
        else {
          expect(held, `${kind} wd ${wd}`).toBeLessThanOrEqual(UPDATE_TENSORS.adam);
          expect(held).toBeGreaterThanOrEqual(13);
        }
        opt.dispose();
        tf.dispose([v, g]);
      }
    }
    }
  });

  it("counts one tower's chunk gradients next to the running sum, not every trained weight twice", () => {
    const budget = { backend: 'wasm', weightBytes: 300e6, trainableBytes: 300e6, optimizerSlots: 2 };
    const perRow = 50e6;
    const all = chooseMicroBatch(32, [perRow], budget);
    const tower = chooseMicroBatch(32, [perRow], { ...budget, chunkGradientBytes: 175e6 });
    expect(tower.microBatch - all.microBatch).toBeGreaterThanOrEqual(2);
    expect(tower.microBatch).toBe(Math.floor((activationBudget(budget) - 175e6) / perRow));
  });

  it('small towers: no checkpointing when the whole batch or a few plain rows fit, even if it would fit more', () => {
    const tiny = { model_type: 'vit', hidden_size: 64, num_hidden_layers: 12, num_attention_heads: 2, intermediate_size: 128, image_size: 32, patch_size: 8 };
    const text = { model_type: 'distilbert', dim: 64, n_layers: 2, n_heads: 2, hidden_dim: 128 };
    const vars = [{ size: 1e5 }];
    const tower = (config: object) => ({ getConfig: () => config, gradientCheckpointing: false, trainableVariables: () => vars });
    const model = { imageEncoder: tower(tiny), textEncoder: tower(text), trainableVariables: () => [...vars, ...vars], namedVariables: () => [...vars, ...vars].map((variable) => ({ variable })) } as unknown as CLIPModel;
    const opts = { batchSize: 32, maxLength: 16, backend: 'wasm', optim: { name: 'adam' } };
    const whole = autoMicroBatch(model, { vision: false, text: false }, opts);
    expect(whole).toMatchObject({ microBatch: 32, gradientCheckpointing: false });
    // A heap sized so that 6 plain rows of the vision tower fit: checkpointing would fit more, but 6 is not tiny.
    const plainRow = activationBytesPerRow(transformerShape(tiny, 'image', 16)!);
    const fixed = activationBudget({ backend: 'wasm', weightBytes: 8e5, trainableBytes: 8e5, optimizerSlots: 2, capacity: 0 }) - 4e5;
    const capacity = (6.5 * plainRow - fixed) / WASM_USABLE_FRACTION;
    const six = autoMicroBatch(model, { vision: false, text: false }, { ...opts, capacity });
    expect(six).toMatchObject({ microBatch: 6, gradientCheckpointing: false });
    expect(Math.floor((6.5 * plainRow) / checkpointedActivationBytesPerRow(transformerShape(tiny, 'image', 16)!))).toBeGreaterThan(6);
    // 1 plain row: checkpointing fits ≥ CHECKPOINT_ROW_GAIN times more and is chosen.
    const one = autoMicroBatch(model, { vision: false, text: false }, { ...opts, capacity: (1.5 * plainRow - fixed) / WASM_USABLE_FRACTION });
    expect(one.gradientCheckpointing).toBe(true);
    expect(one.microBatch).toBeGreaterThanOrEqual(CHECKPOINT_ROW_GAIN);
  });

  it('the config takes a number or auto (default), nothing else', () => {
    expect(parseExperimentConfig(tinyConfig('x')).training.microBatch).toBe('auto');
    expect(parseExperimentConfig(tinyConfig('x', { training: { microBatch: 3 } })).training.microBatch).toBe(3);
    expect(() => parseExperimentConfig(tinyConfig('x', { training: { microBatch: 0 } }))).toThrow(/training\.microBatch/);
  });

  it('a run with training.gradientCheckpointing trains like one without (micro-batched too)', async () => {
    const base = { schedule: { epochs: 1 } };
    const before = tf.memory().numTensors;
    const plain = await runExperiment(tinyConfig(await tmpDir(), base), { io: quiet });
    const ckpt = await runExperiment(tinyConfig(await tmpDir(), { ...base, training: { microBatch: 3, gradientCheckpointing: true } }), { io: quiet });
    expect(tf.memory().numTensors).toBe(before);
    const loss = (r: typeof plain) => r.history.map((h) => [h.loss, h.val_loss]).flat() as number[];
    loss(ckpt).forEach((v, i) => expect(v).toBeCloseTo(loss(plain)[i] as number, 4));
  });

  it('a run with training.microBatch 3 trains like the whole batch (dropout 0), and says so in its log', async () => {
    const lines: string[] = [];
    const io = { stdout: () => {}, stderr: (t: string) => lines.push(t) };
    const before = tf.memory().numTensors;
    const whole = await runExperiment(tinyConfig(await tmpDir(), { schedule: { epochs: 1 } }), { io: quiet });
    const micro = await runExperiment(tinyConfig(await tmpDir(), { schedule: { epochs: 1 }, training: { microBatch: 3 } }), { io });
    expect(tf.memory().numTensors).toBe(before);
    expect(lines.join('')).toMatch(/micro-batch: 3 rows of 8 \(training\.microBatch\)/);
    const loss = (r: typeof whole) => r.history.map((h) => [h.loss, h.val_loss]).flat() as number[];
    loss(micro).forEach((v, i) => expect(v).toBeCloseTo(loss(whole)[i] as number, 4));
  });
});

/** What the tfjs tape holds per image row for a training pass of `enc` (tf.profile peaks at 8 and 4 rows). */
async function tapeBytesPerRow(enc: ReturnType<typeof createImageEncoder>): Promise<number> {
  const vars = enc.trainableVariables();
  const peak = async (rows: number) => {
    const x = tf.randomNormal([rows, 3, 32, 32]) as tf.Tensor4D;
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(enc.encode(x, { training: true })) as tf.Scalar, vars);
      tf.dispose([value, ...Object.values(grads)]);
    });
    x.dispose();
    return info.peakBytes;
  };
  return ((await peak(8)) - (await peak(4))) / 4;
}
