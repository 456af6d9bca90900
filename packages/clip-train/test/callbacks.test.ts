import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@clip-ts/core';
import { AdamOptimizer, type ParamGroup } from '../src/optim/index.js';
import {
  HistoryLogger,
  LossPlot,
  ModelCheckpoint,
  ProgressBar,
  ReduceLROnPlateau,
  formatEpochLine,
  type TrainerControl,
} from '../src/callbacks/index.js';
import { replaceDirAtomic, existingCheckpointDir } from '../src/trainer/index.js';
import type { TrainerState } from '../src/trainer/index.js';
import { FakeClip } from './helpers/fake-clip.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

const traces = JSON.parse(readFileSync(new URL('./fixtures/torch-traces.json', import.meta.url), 'utf8')) as {
  plateau: Array<{ options: Record<string, unknown>; losses: number[]; lrs: number[][] }>;
};

const tmpDir = useTmpDirs('clip-cb-');

function control(optimizer: AdamOptimizer, model = new FakeClip(), history: Record<string, number>[] = []): TrainerControl {
  const state: TrainerState = { epoch: 0, batchInEpoch: 0, epochLossSum: 0, epochLossCount: 0, globalStep: 0, history, callbacks: {} };
  return { stopTraining: false, optimizer, model, history, globalStep: 0, getState: () => state };
}

describe('ReduceLROnPlateau', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it.each([0, 1, 2])('follows torch.optim.lr_scheduler.ReduceLROnPlateau trace %i exactly', (i) => {
    const t = traces.plateau[i]!;
    const o = t.options as { mode: 'min' | 'max'; factor: number; patience: number; threshold: number; threshold_mode: 'rel' | 'abs'; cooldown: number; min_lr: number | number[] };
    const groups: ParamGroup[] = [
      { name: 'heads', lr: 1e-3, weightDecay: 0, params: [] },
      { name: 'towers', lr: 1e-4, weightDecay: 0, params: [] },
    ];
    const opt = new AdamOptimizer(groups, { kind: 'adam' });
    const minLr = Array.isArray(o.min_lr) ? { heads: o.min_lr[0]!, towers: o.min_lr[1]! } : o.min_lr;
    const cb = new ReduceLROnPlateau({ mode: o.mode, factor: o.factor, patience: o.patience, threshold: o.threshold, thresholdMode: o.threshold_mode, cooldown: o.cooldown, minLr });
    cb.setTrainer(control(opt));
    t.losses.forEach((loss, epoch) => {
      cb.onEpochEnd(epoch, { val_loss: loss });
      expect([opt.getLr('heads'), opt.getLr('towers')]).toEqual(t.lrs[epoch]);
    });
    // State round-trip mid-way gives the same continuation.
    const again = new ReduceLROnPlateau({ mode: o.mode, factor: o.factor, patience: o.patience, threshold: o.threshold, thresholdMode: o.threshold_mode, cooldown: o.cooldown, minLr });
    again.setState(JSON.parse(JSON.stringify(cb.getState())));
    expect(again.getState()).toEqual(cb.getState());
  });

  it('ignores epochs without the monitored value', () => {
    const opt = new AdamOptimizer([{ name: 'heads', lr: 1, weightDecay: 0, params: [] }], { kind: 'adam' });
    const cb = new ReduceLROnPlateau({ patience: 0 });
    cb.setTrainer(control(opt));
    for (let e = 0; e < 5; e++) cb.onEpochEnd(e, { loss: 1 });
    expect(opt.getLr('heads')).toBe(1);
  });
});

describe('ModelCheckpoint', () => {
  it('writes best/ only on improvement and last/ with trainer state every epoch', async () => {
    const dir = await tmpDir();
    const model = new FakeClip();
    const opt = new AdamOptimizer([{ name: 'heads', lr: 1, weightDecay: 0, params: [] }], { kind: 'adam' });
    const cb = new ModelCheckpoint({ dir, extraState: () => ({ rng: 42 }) });
    cb.setTrainer(control(opt, model));
    await cb.onEpochEnd(0, { val_loss: 2 });
    const bestStat1 = await fs.stat(path.join(dir, 'best', 'model.safetensors'));
    await cb.onEpochEnd(1, { val_loss: 3 });
    const bestStat2 = await fs.stat(path.join(dir, 'best', 'model.safetensors'));
    expect(bestStat2.mtimeMs).toBe(bestStat1.mtimeMs);
    expect(cb.bestEpoch).toBe(0);
    const state = JSON.parse(await fs.readFile(path.join(dir, 'last', 'trainer-state.json'), 'utf8'));
    expect(state.extra).toEqual({ rng: 42 });
    expect(state.format).toBe('clip-ts-trainer-state/1');
    await cb.onEpochEnd(2, { val_loss: 1 });
    expect(cb.bestEpoch).toBe(2);
    expect((await fs.readdir(dir)).sort()).toEqual(['best', 'last']);
    opt.dispose();
    model.dispose();
  });

  it('a failure while writing a checkpoint leaves the previous one intact', async () => {
    const dir = await tmpDir();
    const target = path.join(dir, 'best');
    await replaceDirAtomic(target, async (tmp) => fs.writeFile(path.join(tmp, 'model.safetensors'), 'v1'));
    await expect(
      replaceDirAtomic(target, async (tmp) => {
        await fs.writeFile(path.join(tmp, 'model.safetensors'), 'half');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(await fs.readFile(path.join(target, 'model.safetensors'), 'utf8')).toBe('v1');
    expect((await fs.readdir(dir)).sort()).toEqual(['best']);
    // A crash between the two renames leaves best.old, which readers fall back to.
    await fs.rename(target, `${target}.old`);
    expect(await existingCheckpointDir(target)).toBe(`${target}.old`);
  });
});

describe('HistoryLogger, LossPlot, ProgressBar', () => {
  const history = [
    { epoch: 0, loss: 2.5, val_loss: 2.6, val_top1: 0.25, lr_heads: 1e-4, seconds: 1.5 },
    { epoch: 1, loss: 2.0, val_loss: 2.3, val_top1: 0.5, lr_heads: 5e-5, seconds: 1.4 },
  ];

  it('writes history.csv and history.jsonl with 1-based epochs', async () => {
    const dir = await tmpDir();
    const cb = new HistoryLogger(dir);
    cb.setTrainer(control(new AdamOptimizer([], { kind: 'adam' }), new FakeClip(), history));
    await cb.onEpochEnd();
    const csv = (await fs.readFile(cb.csvPath, 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('epoch,loss,val_loss,val_top1,lr_heads,seconds');
    expect(csv[2]).toBe('2,2,2.3,0.5,0.00005,1.4');
    const jsonl = (await fs.readFile(cb.jsonlPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(jsonl[1]).toMatchObject({ epoch: 2, val_loss: 2.3 });
  });

  it('renders the loss curve as SVG (both series) and PNG', async () => {
    const dir = await tmpDir();
    const cb = new LossPlot(dir);
    cb.setTrainer(control(new AdamOptimizer([], { kind: 'adam' }), new FakeClip(), history));
    await cb.onEpochEnd();
    const svg = await fs.readFile(path.join(dir, 'loss.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('validation');
    expect(svg).toContain('train');
    const png = await fs.readFile(path.join(dir, 'loss.png'));
    expect([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
  });

  it('writes one line per epoch when not on a TTY', () => {
    const lines: string[] = [];
    const cb = new ProgressBar({ epochs: 2, write: (t) => lines.push(t) });
    cb.onEpochBegin(0);
    cb.onBatchEnd(0, { loss: 2 });
    cb.onEpochEnd(0, history[0]!);
    expect(lines).toEqual([`${formatEpochLine(0, 2, history[0]!)}\n`]);
    expect(lines[0]).toMatch(/^epoch 1\/2 {2}loss 2\.5000 {2}val_loss 2\.6000 {2}val_top1 0\.2500 {2}lr_heads 1\.00e-4 {2}1\.5s\n$/);
  });
});
