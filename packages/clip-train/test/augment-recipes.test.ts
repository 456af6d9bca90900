import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runExperiment } from '../src/experiment/index.js';
import { tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

// Issue 14 §4 (data.augment) and §5 (model.vision.patchDropout) through runExperiment.
const tmpDir = useTmpDirs('clip-augment-');
const quiet = { stdout: () => {}, stderr: () => {} };

describe('augmentation and patch dropout in an experiment', () => {
  it('change the training inputs only: train loss moves, validation (unaugmented, all patches) does not', async () => {
    const base = tinyConfig('');
    // A learning rate so small the weights stay put, so the validation loss shows only what the val inputs are.
    const run = async (over: Parameters<typeof tinyConfig>[1]) => {
      const before = tf.memory().numTensors;
      const r = await runExperiment(tinyConfig(await tmpDir(), { optim: { lr: 1e-9 }, schedule: { epochs: 1 }, ...over }), { io: quiet });
      expect(tf.memory().numTensors).toBe(before);
      return r.history[0]!;
    };
    const plain = await run({});
    const augmented = await run({ data: { ...base.data, augment: { randomResizedCrop: { scale: [0.5, 1] }, colorJitter: { brightness: 0.4, saturation: 0.4 } } } });
    const dropped = await run({ model: { ...base.model, vision: { ...(base.model as { vision: object }).vision, patchDropout: 0.5 } } as typeof base.model });
    for (const h of [augmented, dropped]) {
      expect(Number.isFinite(h.loss)).toBe(true);
      expect(Math.abs(h.loss! - plain.loss!)).toBeGreaterThan(1e-4);
      expect(h.val_loss).toBeCloseTo(plain.val_loss!, 5);
    }
  });

  it('a run interrupted mid-epoch and resumed ends like an uninterrupted one (augmentation draws and patch-dropout picks included)', async () => {
    const config = (dir: string) => {
      const base = tinyConfig(dir);
      return {
        ...base,
        model: { ...base.model, vision: { ...(base.model as { vision: object }).vision, patchDropout: 0.5 } } as typeof base.model,
        data: { ...base.data, augment: { randomResizedCrop: {}, colorJitter: { contrast: 0.3 } } },
      };
    };
    const strip = (h: Record<string, number>[]) => h.map(({ seconds: _s, ...rest }) => rest);
    const straight = await runExperiment(config(await tmpDir()), { io: quiet });
    const dir = await tmpDir();
    const controller = new AbortController();
    // Ctrl-C as epoch 1's progress line appears: fit() stops at the next step boundary.
    const io = { stdout: () => {}, stderr: (t: string) => (t.startsWith('epoch 1/2') ? controller.abort() : undefined) };
    const first = await runExperiment(config(dir), { io, signal: controller.signal });
    expect(first.interrupted).toBe(true);
    const resumed = await runExperiment(config(dir), { io: quiet, resume: true });
    expect(strip(resumed.history)).toEqual(strip(straight.history));
  });
});
