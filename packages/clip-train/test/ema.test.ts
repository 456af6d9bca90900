import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, initBackend, type NamedVariable } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { CLIP } from '@clip-ts/encoders';
import { Callback, EmaCallback } from '../src/callbacks/index.js';
import { ModelEma } from '../src/ema/index.js';
import { formatResultsTable, runExperiment } from '../src/experiment/index.js';
import { AdamOptimizer, buildParamGroups } from '../src/optim/index.js';
import { Trainer } from '../src/trainer/index.js';
import { FakeClip, FakePairs, fakeTask } from './helpers/fake-clip.js';
import { tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

const tmpDir = useTmpDirs('clip-ema-');
const quiet = { stdout: () => {}, stderr: () => {} };
const f = Math.fround;

/**
 * Brute-force EMA over recorded weights, in float32 exactly as the cpu kernels round: each product, then the
 * sum (so the comparison can be bit for bit).
 */
function bruteForceEma(steps: Float32Array[][], init: Float32Array[], decay: number, warmupSteps: number): Float32Array[] {
  let avg = init.map((a) => Float32Array.from(a));
  steps.forEach((weights, s) => {
    const d = s + 1 <= warmupSteps ? 0 : decay;
    avg = d === 0 ? weights.map((w) => Float32Array.from(w)) : avg.map((a, i) => a.map((e, j) => f(f(f(d) * e) + f(f(1 - d) * (weights[i]![j] as number)))));
  });
  return avg;
}

const values = (vars: readonly NamedVariable[]) => vars.map((nv) => nv.variable.dataSync() as Float32Array);

describe('ModelEma', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('matches a brute-force EMA bit for bit (warmup copies, then decay), leaks nothing, and swaps weights in and back out exactly', async () => {
    const a = tf.variable(tf.randomNormal([3, 4], 0, 1, 'float32', 1));
    const b = tf.variable(tf.randomNormal([5], 0, 1, 'float32', 2));
    const vars: NamedVariable[] = [
      { name: 'a', variable: a, noDecay: false },
      { name: 'b', variable: b, noDecay: true },
    ];
    const init = values(vars).map((v) => Float32Array.from(v));
    const ema = new ModelEma(vars, { decay: 0.9, warmupSteps: 2 });
    const before = tf.memory().numTensors;
    const recorded: Float32Array[][] = [];
    for (let s = 1; s <= 6; s++) {
      tf.tidy(() => {
        a.assign(tf.randomNormal([3, 4], 0, 1, 'float32', 10 + s));
        b.assign(tf.randomNormal([5], 0, 1, 'float32', 20 + s));
      });
      recorded.push(values(vars).map((v) => Float32Array.from(v)));
      ema.update(s);
    }
    expect(tf.memory().numTensors).toBe(before);
    const want = bruteForceEma(recorded, init, 0.9, 2);
    const got = ema.snapshot();
    expect(Array.from(got.get('a')!.dataSync())).toEqual(Array.from(want[0]!));
    expect(Array.from(got.get('b')!.dataSync())).toEqual(Array.from(want[1]!));
    tf.dispose([...got.values()]);
    expect(ema.decayAt(2)).toBe(0);
    expect(ema.decayAt(3)).toBe(0.9);

    const raw = values(vars).map((v) => Float32Array.from(v));
    const inside = await ema.withAveragedWeights(async () => values(vars).map((v) => Array.from(v)));
    expect(inside).toEqual(want.map((w) => Array.from(w)));
    await expect(ema.withAveragedWeights(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(values(vars)).toEqual(raw);
    expect(tf.memory().numTensors).toBe(before);

    const wrong = tf.variable(tf.zeros([2]));
    expect(() => ema.restore([{ name: 'a', variable: a, noDecay: false }, { name: 'b', variable: wrong, noDecay: true }], 'ckpt/ema')).toThrow(CheckpointError);
    expect(() => ema.restore([{ name: 'a', variable: a, noDecay: false }], 'ckpt/ema')).toThrow(/ckpt\/ema: the EMA weights lack b/);
    expect(() => new ModelEma(vars, { decay: 1 })).toThrow(/decay must be in \(0, 1\)/);
    ema.dispose();
    tf.dispose([a, b, wrong]);
  });

  it('EmaCallback folds in every optimizer step of the Trainer (accumulation 3 and a trailing partial step) as the brute force does', async () => {
    const model = new FakeClip(6, 8, 4, 1);
    const optimizer = new AdamOptimizer(buildParamGroups(model.namedVariables(), { lr: 3e-2, weightDecay: 0 }), { kind: 'adam' });
    const init = values(model.vars).map((v) => Float32Array.from(v));
    const ema = new ModelEma(model.vars, { decay: 0.8, warmupSteps: 1 });
    const recorded: Float32Array[][] = [];
    class Recorder extends Callback {
      readonly name = 'recorder';
      private seen = 0;
      private record(): void {
        if (this.trainer.globalStep > this.seen) recorded.push(values(model.vars).map((v) => Float32Array.from(v)));
        this.seen = this.trainer.globalStep;
      }
      override onBatchEnd(): void {
        this.record();
      }
      override onEpochEnd(): void {
        this.record();
      }
    }
    const trainer = new Trainer({ model, task: fakeTask(model), optimizer, accumulation: 3, callbacks: [new Recorder(), new EmaCallback({ ema })] });
    await trainer.fit({ train: new FakePairs(32, 8), epochs: 1 });
    // After the first epoch (Adam's moments now exist) the second must not add a tensor.
    const before = tf.memory().numTensors;
    await trainer.fit({ train: new FakePairs(32, 8), epochs: 2 });
    expect(tf.memory().numTensors).toBe(before);
    // 4 batches per epoch: a step after batch 3 and a trailing one after batch 4, twice.
    expect(trainer.globalStep).toBe(4);
    expect(recorded).toHaveLength(4);
    const want = bruteForceEma(recorded, init, 0.8, 1);
    const got = ema.snapshot();
    model.vars.forEach((nv, i) => expect(Array.from(got.get(nv.name)!.dataSync()), nv.name).toEqual(Array.from(want[i]!)));
    expect(trainer.getState().callbacks.ema).toEqual({ steps: 4 });
    tf.dispose([...got.values()]);
    ema.dispose();
    optimizer.dispose();
    model.dispose();
  });
});

describe('training.ema in runExperiment', () => {
  it('logs ema_val_* beside val_*, writes best/ema and last/ema that CLIP.fromPretrained loads, and 1 epoch + resume = 2 straight epochs bit for bit', async () => {
    const a = await tmpDir();
    const b = await tmpDir();
    const training = { ema: { decay: 0.6 } };
    const before = tf.memory().numTensors;
    const straight = await runExperiment(tinyConfig(a, { training, schedule: { epochs: 2 } }), { io: quiet });
    expect(tf.memory().numTensors).toBe(before);
    for (const h of straight.history) {
      expect(Number.isFinite(h.ema_val_loss)).toBe(true);
      expect(h.ema_val_loss).not.toBe(h.val_loss);
      expect(h).toHaveProperty('ema_val_top1');
    }
    expect(straight.emaVal?.loss).toBe(straight.history[straight.bestEpoch - 1]!.ema_val_loss);
    expect(formatResultsTable(straight)).toMatch(new RegExp(`EMA weights \\(epoch ${straight.bestEpoch}, best/ema\\) *\\| ${straight.emaVal!.loss.toFixed(4)}`));
    expect(await fs.readFile(path.join(a, 'history.csv'), 'utf8')).toMatch(/ema_val_loss/);
    const clip = await CLIP.fromPretrained(path.join(a, 'best', 'ema'));
    const emb = await clip.embedTexts(['a red circle']);
    expect([emb.rows, emb.dim]).toEqual([1, 8]);
    const bestEma = await readSafetensors(path.join(a, 'best', 'ema', 'model.safetensors'));
    expect(clip.model.logitScale.dataSync()[0]).toBe(bestEma.tensors.get('logit_scale')!.data[0]);
    clip.dispose();

    await runExperiment(tinyConfig(b, { training, schedule: { epochs: 1 } }), { io: quiet });
    const resumed = await runExperiment(tinyConfig(b, { training, schedule: { epochs: 2 } }), { io: quiet, resume: true });
    const strip = (h: Record<string, number>[]) => h.map(({ seconds: _s, ...rest }) => rest);
    expect(strip(resumed.history)).toEqual(strip(straight.history));
    const emaA = await readSafetensors(path.join(a, 'last', 'ema', 'model.safetensors'));
    const emaB = await readSafetensors(path.join(b, 'last', 'ema', 'model.safetensors'));
    const rawA = await readSafetensors(path.join(a, 'last', 'model.safetensors'));
    let differsFromRaw = false;
    for (const [name, t] of emaA.tensors) {
      expect(Array.from(emaB.tensors.get(name)!.data), name).toEqual(Array.from(t.data));
      if (Array.from(rawA.tensors.get(name)!.data).join() !== Array.from(t.data).join()) differsFromRaw = true;
    }
    expect(differsFromRaw).toBe(true);
    // The config that made the average is part of what a resume must match.
    await expect(runExperiment(tinyConfig(b, { training: { ema: { decay: 0.7 } }, schedule: { epochs: 3 } }), { io: quiet, resume: true })).rejects.toThrow(/training\.ema\.decay/);
  });
});
