import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, initBackend } from '@clip-ts/core';
import { AdamOptimizer, buildParamGroups, type ParamGroup } from '../src/optim/index.js';
import { Callback, ModelCheckpoint, WarmupCosine, type TrainerControl } from '../src/callbacks/index.js';
import { Trainer, restoreTrainer, type TrainerState } from '../src/trainer/index.js';
import { FakeClip, FakePairs, fakeTask } from './helpers/fake-clip.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

const traces = JSON.parse(readFileSync(new URL('./fixtures/torch-traces.json', import.meta.url), 'utf8')) as {
  warmupCosine: Array<{ warmupSteps: number; totalSteps: number; minLr: number; baseLrs: number[]; lrs: number[][] }>;
};
const tmpDir = useTmpDirs('clip-wc-');

function control(optimizer: AdamOptimizer): TrainerControl {
  const state: TrainerState = { epoch: 0, batchInEpoch: 0, epochLossSum: 0, epochLossCount: 0, globalStep: 0, history: [], callbacks: {} };
  return { stopTraining: false, optimizer, model: new FakeClip(), history: [], globalStep: 0, getState: () => state };
}

/** Relative agreement (torch computes base·(factor) where we compute the LR directly: last-bit differences). */
function expectLrs(got: number[], want: number[], what: string): void {
  got.forEach((g, i) => expect(Math.abs(g - (want[i] as number)), what).toBeLessThanOrEqual(1e-12 * Math.abs(want[i] as number) + 1e-18));
}

describe('WarmupCosine', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it.each([0, 1, 2])('follows the torch LambdaLR (open_clip cosine_lr) trace %i per optimizer step, and resumes from its state', (i) => {
    const t = traces.warmupCosine[i]!;
    const make = () => {
      const groups: ParamGroup[] = [
        { name: 'heads', lr: t.baseLrs[0]!, weightDecay: 0, params: [] },
        { name: 'towers', lr: t.baseLrs[1]!, weightDecay: 0, params: [] },
      ];
      const opt = new AdamOptimizer(groups, { kind: 'adam' });
      const cb = new WarmupCosine({ warmupSteps: t.warmupSteps, totalSteps: t.totalSteps, minLr: t.minLr });
      cb.setTrainer(control(opt));
      return { opt, cb };
    };
    const { opt, cb } = make();
    cb.onTrainBegin({});
    const half = Math.floor(t.lrs.length / 2);
    let resumed: ReturnType<typeof make> | undefined;
    t.lrs.forEach((want, step) => {
      if (step === half) {
        // A fresh callback + optimizer whose LRs are whatever the interrupted run left, restored from JSON state.
        resumed = make();
        resumed.opt.setLr('heads', opt.getLr('heads'));
        resumed.opt.setLr('towers', opt.getLr('towers'));
        resumed.cb.setState(JSON.parse(JSON.stringify(cb.getState())));
        resumed.cb.onTrainBegin({});
      }
      const r = resumed ?? { opt, cb };
      r.cb.onBatchBegin(step, { step });
      expectLrs([r.opt.getLr('heads'), r.opt.getLr('towers')], want, `step ${step}`);
    });
  });

  it('refuses a schedule with no decay steps', () => {
    expect(() => new WarmupCosine({ warmupSteps: 5, totalSteps: 5 })).toThrow(ConfigError);
    expect(() => new WarmupCosine({ warmupSteps: -1, totalSteps: 5 })).toThrow(/warmupSteps/);
  });

  it('in the Trainer: interrupted mid-epoch and resumed from last/, the LR per step and the weights match an uninterrupted run', async () => {
    const dir = await tmpDir();
    class RecordLr extends Callback {
      readonly name = 'recordLr';
      lrs: number[] = [];
      override onBatchBegin(): void {
        this.lrs.push(this.trainer.optimizer.getLr('heads'));
      }
    }
    const run = (callbacks: Callback[], signal?: AbortSignal) => {
      const model = new FakeClip(6, 8, 4, 1);
      const optimizer = new AdamOptimizer(buildParamGroups(model.namedVariables(), { lr: 3e-2, towerLr: 1e-2, weightDecay: 0.01 }), { kind: 'adamw' });
      const schedule = new WarmupCosine({ warmupSteps: 3, totalSteps: 12 });
      const recorder = new RecordLr();
      const trainer = new Trainer({ model, task: fakeTask(model), optimizer, callbacks: [schedule, recorder, ...callbacks], signal });
      return { model, optimizer, trainer, recorder, dispose: () => (optimizer.dispose(), model.dispose()) };
    };
    const controller = new AbortController();
    class AbortAt extends Callback {
      readonly name = 'abortAt';
      override onBatchEnd(batch: number, logs: Record<string, number>): void {
        if (logs.epoch === 1 && batch === 1) controller.abort(); // 4 batches/epoch: after step 6 of 12
      }
    }
    const a = run([new AbortAt()], controller.signal);
    const ckpt = new ModelCheckpoint({ dir });
    ckpt.setTrainer(a.trainer);
    expect((await a.trainer.fit({ train: new FakePairs(32, 8), epochs: 3 })).interrupted).toBe(true);
    await ckpt.writeLast();
    const b = run([]);
    await b.model.loadWeights(path.join(dir, 'last'));
    await restoreTrainer(path.join(dir, 'last'), b.trainer);
    await b.trainer.fit({ train: new FakePairs(32, 8), epochs: 3 });
    const ref = run([]);
    await ref.trainer.fit({ train: new FakePairs(32, 8), epochs: 3 });
    expect(ref.recorder.lrs).toHaveLength(12);
    expect([...a.recorder.lrs, ...b.recorder.lrs]).toEqual(ref.recorder.lrs);
    expect(ref.recorder.lrs[2]).toBe(3e-2); // the peak, after 3 warmup steps
    for (const [name, w] of ref.model.weights()) expect(Array.from(b.model.weights().get(name)!)).toEqual(Array.from(w));
    for (const r of [a, b, ref]) r.dispose();
  });
});
