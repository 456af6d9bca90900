import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { runExperiment } from '../src/experiment/index.js';
import { loadModelDir } from '../src/experiment/pretrained.js';
import { tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

// Issue 14 §1–§3 through runExperiment: loss, targets and schedule.lr as config options.
const tmpDir = useTmpDirs('clip-recipes-');
const quiet = { stdout: () => {}, stderr: () => {} };
const strip = (h: Record<string, number>[]) => h.map(({ seconds: _s, ...rest }) => rest);

describe('training recipes', () => {
  it('loss: siglip trains, saves logit_bias with loss_type siglip, and a CLIP checkpoint cannot resume as SigLIP', async () => {
    const dir = await tmpDir();
    const before = tf.memory().numTensors;
    const r = await runExperiment(tinyConfig(dir, { loss: 'siglip' }), { io: quiet });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.history[1]!.loss).toBeLessThan(r.history[0]!.loss!);
    const config = JSON.parse(await fs.readFile(path.join(dir, 'best', 'config.json'), 'utf8'));
    expect(config.loss_type).toBe('siglip');
    const st = await readSafetensors(path.join(dir, 'best', 'model.safetensors'));
    const bias = st.tensors.get('logit_bias');
    expect(bias?.shape).toEqual([]);
    expect(bias?.data[0]).not.toBe(-10); // it trained
    const model = await loadModelDir(path.join(dir, 'best'));
    expect(model.probabilities).toBe('sigmoid');
    expect(model.logitBias?.dataSync()[0]).toBe(bias?.data[0]);
    model.dispose();
    await expect(runExperiment(tinyConfig(dir, { loss: 'clip' }), { io: quiet, resume: true })).rejects.toThrow(ConfigError);
    await expect(runExperiment(tinyConfig(dir, { loss: 'clip' }), { io: quiet, resume: true })).rejects.toThrow(/loss: checkpoint has "siglip", config has "clip"/);
  });

  // One batch of all 24 training images, whose first captions repeat (e.g. 'a green circle' three times).
  it("targets: 'auto' trains bit for bit like 'diagonal'; 'grouped' relabels equal captions (SigLIP loss changes; CLIP's CE cannot)", async () => {
    const run = async (targets: 'auto' | 'diagonal' | 'grouped', loss: 'clip' | 'siglip' = 'clip') =>
      (await runExperiment(tinyConfig(await tmpDir(), { loss, targets, schedule: { epochs: 1 }, data: { ...tinyConfig('').data, captionPick: 'first', batchSize: 24 } }), { io: quiet })).history;
    const diagonal = await run('diagonal');
    expect(strip(await run('auto'))).toEqual(strip(diagonal));
    // Equal captions have equal text embeddings (no text dropout here), so spreading the CE targets over
    // identical columns leaves the loss as it was: the false negatives cost log|group| either way.
    expect((await run('grouped'))[0]!.loss).toBeCloseTo(diagonal[0]!.loss!, 5);
    // SigLIP labels them +1 instead of −1: a different loss from the first step.
    const sigDiagonal = await run('diagonal', 'siglip');
    const sigGrouped = await run('grouped', 'siglip');
    expect(Math.abs(sigGrouped[0]!.loss! - sigDiagonal[0]!.loss!)).toBeGreaterThan(1e-2);
  });

  it('frozen towers: SigLIP with grouped targets on cached features follows the uncached run (the cached batches carry indices and captions)', async () => {
    const frozen = async (cache: boolean) => {
      const c = tinyConfig(await tmpDir(), {
        loss: 'siglip',
        targets: 'grouped',
        featureCache: cache ? { enabled: 'auto' } : { enabled: false },
        data: { ...tinyConfig('').data, captionPick: 'first', batchSize: 24 },
      });
      return runExperiment({ ...c, model: { ...c.model!, freeze: 'towers' as const }, schedule: { epochs: 2 } }, { io: quiet });
    };
    const uncached = await frozen(false);
    const cached = await frozen(true);
    expect(cached.featureCache).toBe(true);
    cached.history.forEach((h, i) => {
      expect(Math.abs(h.loss! - uncached.history[i]!.loss!)).toBeLessThan(1e-5);
      expect(Math.abs(h.val_loss! - uncached.history[i]!.val_loss!)).toBeLessThan(1e-5);
    });
  });

  it('schedule.lr warmup-cosine: the logged LRs follow the schedule; Ctrl-C + resume ends like an uninterrupted run', async () => {
    const a = await tmpDir();
    const b = await tmpDir();
    const cfg = (dir: string) => tinyConfig(dir, { loss: 'siglip', targets: 'grouped', schedule: { epochs: 2, lr: { kind: 'warmup-cosine', warmupSteps: 2, minLr: 1e-5 } } });
    const straight = await runExperiment(cfg(a), { io: quiet });
    // 3 steps per epoch, 6 in all: the LR of the last step of epoch 1 (k = 2) and of the run (k = 5).
    const lrAt = (k: number) => 1e-5 + 0.5 * (1 + Math.cos((Math.PI * (k - 2)) / 4)) * (3e-3 - 1e-5);
    expect(straight.history[0]!.lr_heads).toBeCloseTo(lrAt(2), 12);
    expect(straight.history[1]!.lr_heads).toBeCloseTo(lrAt(5), 12);
    const controller = new AbortController();
    const io = { stdout: () => {}, stderr: (t: string) => void (t.startsWith('epoch 1/2') && controller.abort()) };
    expect((await runExperiment(cfg(b), { io, signal: controller.signal })).interrupted).toBe(true);
    const resumed = await runExperiment(cfg(b), { io: quiet, resume: true });
    expect(strip(resumed.history)).toEqual(strip(straight.history));
    expect(() => tinyConfig(a, { schedule: { lr: { kind: 'warmup-cosine', warmupSteps: 6 }, epochs: 2 } })).not.toThrow();
    await expect(runExperiment(tinyConfig(await tmpDir(), { schedule: { lr: { kind: 'warmup-cosine', warmupSteps: 6 }, epochs: 2 } }), { io: quiet })).rejects.toThrow(
      /schedule\.lr\.warmupSteps \(6\) must be below the run's 6 optimizer steps/,
    );
  });
});
