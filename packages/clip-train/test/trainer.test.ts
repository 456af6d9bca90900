import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@clip-ts/core';
import { AdamOptimizer, buildParamGroups } from '../src/optim/index.js';
import { Trainer, TrainingError, restoreTrainer, type TrainTask } from '../src/trainer/index.js';
import { Callback, EarlyStopping, ModelCheckpoint, NanGuard, ReduceLROnPlateau } from '../src/callbacks/index.js';
import { FakeClip, FakePairs, fakeTask, type PairBatch } from './helpers/fake-clip.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

const tmpDir = useTmpDirs('clip-train-');

function setup(opts: { accumulation?: number; clipGradNorm?: number; callbacks?: Callback[]; signal?: AbortSignal; seed?: number; task?: TrainTask<PairBatch> } = {}) {
  const model = new FakeClip(6, 8, 4, opts.seed ?? 1);
  const optimizer = new AdamOptimizer(buildParamGroups(model.namedVariables(), { lr: 3e-2, towerLr: 1e-2, weightDecay: 0.01 }), { kind: 'adamw' });
  const trainer = new Trainer({
    model,
    task: opts.task ?? fakeTask(model),
    optimizer,
    callbacks: opts.callbacks ?? [],
    accumulation: opts.accumulation,
    clipGradNorm: opts.clipGradNorm,
    signal: opts.signal,
  });
  const dispose = () => {
    optimizer.dispose();
    model.dispose();
  };
  return { model, optimizer, trainer, dispose };
}

describe('Trainer', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('learns the fake pairs: train and val loss fall, in-batch top-1 rises, logs carry LRs and batch size', async () => {
    const { trainer, dispose } = setup();
    const { history } = await trainer.fit({ train: new FakePairs(32, 8), val: new FakePairs(16, 8, 6, 7, false), epochs: 6 });
    dispose();
    expect(history).toHaveLength(6);
    const first = history[0]!;
    const last = history[5]!;
    expect(last.loss).toBeLessThan(first.loss! * 0.8);
    expect(last.val_loss).toBeLessThan(first.val_loss!);
    expect(last.val_top1).toBeGreaterThan(first.val_top1!);
    expect(last.val_top5).toBeGreaterThanOrEqual(last.val_top1!);
    expect(last.val_batch_size).toBe(8);
    expect(last.lr_towers).toBe(1e-2);
    expect(last.lr_heads).toBe(3e-2);
  });

  it('does not leak tensors across epochs (with clipping and accumulation on)', async () => {
    const { trainer, dispose } = setup({ clipGradNorm: 0.5, accumulation: 2 });
    const train = new FakePairs(24, 4);
    const val = new FakePairs(8, 4);
    await trainer.fit({ train, val, epochs: 1 }); // optimizer moments are created on the first step
    const before = tf.memory().numTensors;
    await trainer.fit({ train, val, epochs: 4 });
    expect(tf.memory().numTensors).toBe(before);
    expect(trainer.globalStep).toBe(4 * 3); // 6 micro-batches per epoch, 2 per step
    dispose();
  });

  it('gradient accumulation averages the micro-batch gradients into one step', async () => {
    const a = setup({ accumulation: 2 });
    const data = new FakePairs(8, 4, 6, 3, false);
    await a.trainer.fit({ train: data, epochs: 1 });
    // Manual: mean of the two batches' gradients, one AdamW step.
    const b = setup();
    const vars = b.optimizer.variables();
    const grads: tf.NamedTensorMap[] = [];
    for await (const batch of data.batches(0)) {
      grads.push(tf.variableGrads(() => b.model.loss(batch), vars).grads);
      tf.dispose([batch.x, batch.y]);
    }
    const mean = new Map(vars.map((v) => [v, tf.div(tf.add(grads[0]![v.name]!, grads[1]![v.name]!), 2)] as const));
    b.optimizer.applyGradients(mean);
    for (const nv of a.model.namedVariables()) {
      const got = nv.variable.dataSync();
      const want = b.model.v(nv.name).dataSync();
      got.forEach((x, i) => expect(Math.abs(x - want[i]!)).toBeLessThan(1e-6));
    }
    expect(a.trainer.globalStep).toBe(1);
    tf.dispose([...mean.values(), ...grads.flatMap((g) => Object.values(g))]);
    a.dispose();
    b.dispose();
  });

  it('trains only trainable variables: a frozen tower does not move', async () => {
    const { model, trainer, dispose } = setup();
    model.v('vision_model.dense.weight').trainable = false;
    const before = model.v('vision_model.dense.weight').dataSync().slice();
    const text = model.v('text_model.dense.weight').dataSync().slice();
    await trainer.fit({ train: new FakePairs(16, 8), epochs: 1 });
    expect(Array.from(model.v('vision_model.dense.weight').dataSync())).toEqual(Array.from(before));
    expect(Array.from(model.v('text_model.dense.weight').dataSync())).not.toEqual(Array.from(text));
    dispose();
  });

  it('NanGuard stops with a TrainingError naming the step', async () => {
    let calls = 0;
    const model0 = new FakeClip();
    const base = fakeTask(model0);
    const task: TrainTask<PairBatch> = { ...base, trainLoss: (b) => (++calls === 3 ? tf.tidy(() => tf.mul(model0.loss(b), NaN) as tf.Scalar) : model0.loss(b)) };
    const optimizer = new AdamOptimizer(buildParamGroups(model0.namedVariables(), { lr: 1e-2, weightDecay: 0 }), { kind: 'adam' });
    const trainer = new Trainer({ model: model0, task, optimizer, callbacks: [new NanGuard()] });
    const err = await trainer.fit({ train: new FakePairs(32, 8), epochs: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingError);
    expect((err as Error).message).toMatch(/loss is NaN at step 3 \(epoch 1, batch 3\)/);
    optimizer.dispose();
    model0.dispose();
  });

  it('a callback can change learning rates and stop training', async () => {
    class StopAfterTwo extends Callback {
      readonly name = 'stopper';
      override onEpochEnd(epoch: number): void {
        this.trainer.optimizer.setLr('heads', 1e-4);
        if (epoch === 1) this.trainer.stopTraining = true;
      }
    }
    const { trainer, optimizer, dispose } = setup({ callbacks: [new StopAfterTwo()] });
    const { history } = await trainer.fit({ train: new FakePairs(16, 8), epochs: 10 });
    expect(history).toHaveLength(2);
    expect(optimizer.getLr('heads')).toBe(1e-4);
    expect(history[1]!.lr_heads).toBe(1e-4); // epoch 0 logged 3e-2, epoch 1 ran at 1e-4
    expect(history[0]!.lr_heads).toBe(3e-2);
    dispose();
  });

  it('batch callbacks get the index within the epoch (Keras); the global step is in logs.step', async () => {
    const seen: Array<[string, number, number, number]> = [];
    class Recorder extends Callback {
      readonly name = 'record';
      override onBatchBegin(batch: number, logs: Record<string, number>): void {
        seen.push(['begin', logs.epoch!, batch, logs.step!]);
      }
      override onBatchEnd(batch: number, logs: Record<string, number>): void {
        expect(logs.batch).toBe(batch);
        seen.push(['end', logs.epoch!, batch, logs.step!]);
      }
    }
    const { trainer, dispose } = setup({ callbacks: [new Recorder()], accumulation: 2 });
    await trainer.fit({ train: new FakePairs(24, 8), epochs: 2 }); // 3 batches per epoch, 2 per step
    dispose();
    // Steps: epoch 0 batches 0-1 → step 1, batch 2 → trailing step 2 (taken after onBatchEnd); epoch 1 → 3, 4.
    expect(seen).toEqual([
      ['begin', 0, 0, 0], ['end', 0, 0, 0],
      ['begin', 0, 1, 0], ['end', 0, 1, 1],
      ['begin', 0, 2, 1], ['end', 0, 2, 1],
      ['begin', 1, 0, 2], ['end', 1, 0, 2],
      ['begin', 1, 1, 2], ['end', 1, 1, 3],
      ['begin', 1, 2, 3], ['end', 1, 2, 3],
    ]);
  });

  it.each([0, 2])('stopTraining set in onBatchEnd at batch %i of epoch 0: exactly k+1 optimizer steps, then onEpochEnd and onTrainEnd once', async (k) => {
    const events: string[] = [];
    class StopAt extends Callback {
      readonly name = 'stopAt';
      override onBatchEnd(batch: number, logs: Record<string, number>): void {
        events.push(`batch ${logs.epoch}/${batch}`);
        if (logs.epoch === 0 && batch === k) this.trainer.stopTraining = true;
      }
      override onEpochEnd(epoch: number, logs: Record<string, number>): void {
        events.push(`epochEnd ${epoch} val ${logs.val_loss !== undefined}`);
      }
      override onTrainEnd(): void {
        events.push('trainEnd');
      }
    }
    const { trainer, optimizer, dispose } = setup({ callbacks: [new StopAt()] });
    const res = await trainer.fit({ train: new FakePairs(64, 8), val: new FakePairs(16, 8), epochs: 5 }); // 8 batches per epoch
    expect(optimizer.step).toBe(k + 1);
    expect(trainer.globalStep).toBe(k + 1);
    const batches = Array.from({ length: k + 1 }, (_, i) => `batch 0/${i}`);
    // The cut-short epoch is still validated, logged and ended; it counts as completed.
    expect(events).toEqual([...batches, 'epochEnd 0 val true', 'trainEnd']);
    expect(res).toMatchObject({ interrupted: false, epochsCompleted: 1 });
    expect(res.history).toHaveLength(1);
    expect(trainer.getState()).toMatchObject({ epoch: 1, batchInEpoch: 0 });
    dispose();
  });

  it('stopTraining in onBatchEnd mid-accumulation still applies the gradients of the batches run', async () => {
    class StopAt extends Callback {
      readonly name = 'stopAt';
      override onBatchEnd(batch: number): void {
        if (batch === 2) this.trainer.stopTraining = true;
      }
    }
    const { trainer, dispose } = setup({ callbacks: [new StopAt()], accumulation: 2 });
    await trainer.fit({ train: new FakePairs(64, 8), epochs: 3 });
    expect(trainer.globalStep).toBe(2); // batches 0-1 → one step; batch 2 alone → the trailing step
    dispose();
  });

  it('EarlyStopping stops after `patience` epochs without improvement and restores the best weights', async () => {
    const es = new EarlyStopping({ patience: 2 });
    const { trainer, model, dispose } = setup({ callbacks: [es] });
    // A validation loss that only gets worse after epoch 1 (index 1).
    const scripted = [3, 2, 2.5, 2.6, 2.7, 2.8];
    let bestWeights: Float32Array | undefined;
    class Script extends Callback {
      readonly name = 'script';
      override onEpochEnd(epoch: number, logs: Record<string, number>): void {
        logs.val_loss = scripted[epoch]!;
        if (epoch === 1) bestWeights = model.v('visual_projection.weight').dataSync().slice() as Float32Array;
      }
    }
    // Script must run before EarlyStopping: put it first.
    const t2 = new Trainer({ model, task: fakeTask(model), optimizer: trainer.optimizer, callbacks: [new Script(), es] });
    const { history } = await t2.fit({ train: new FakePairs(16, 8), epochs: 6 });
    expect(history).toHaveLength(4);
    expect(es.stoppedEpoch).toBe(3);
    expect(Array.from(model.v('visual_projection.weight').dataSync())).toEqual(Array.from(bestWeights!));
    dispose();
  });

  it('resume: 1 epoch + resume from last/ gives exactly the weights and history of 2 uninterrupted epochs', async () => {
    const straight = setup();
    const val = new FakePairs(16, 8, 6, 9, false);
    await straight.trainer.fit({ train: new FakePairs(32, 8), val, epochs: 2 });

    const dir = await tmpDir();
    const mk = () => {
      const ckpt = new ModelCheckpoint({ dir });
      const plateau = new ReduceLROnPlateau({ patience: 0, factor: 0.5 });
      return { ckpt, plateau, run: setup({ callbacks: [plateau, ckpt] }) };
    };
    const first = mk();
    await first.run.trainer.fit({ train: new FakePairs(32, 8), val, epochs: 1 });
    first.run.dispose(); // the "crash"
    const second = mk();
    await second.run.model.loadWeights(path.join(dir, 'last'));
    await restoreTrainer(path.join(dir, 'last'), second.run.trainer);
    expect(second.run.trainer.currentEpoch).toBe(1);
    await second.run.trainer.fit({ train: new FakePairs(32, 8), val, epochs: 2 });

    // Reference run with the same callbacks, uninterrupted.
    const refDir = await tmpDir();
    const ref = setup({ callbacks: [new ReduceLROnPlateau({ patience: 0, factor: 0.5 }), new ModelCheckpoint({ dir: refDir })] });
    await ref.trainer.fit({ train: new FakePairs(32, 8), val, epochs: 2 });
    const strip = (h: Record<string, number>[]) => h.map(({ seconds: _s, ...rest }) => rest);
    expect(strip(second.run.trainer.history)).toEqual(strip(ref.trainer.history));
    for (const [name, w] of ref.model.weights()) expect(Array.from(second.run.model.weights().get(name)!)).toEqual(Array.from(w));
    expect(second.run.optimizer.getState().step).toBe(ref.optimizer.step);
    straight.dispose();
    second.run.dispose();
    ref.dispose();
  });

  it('an abort from a timer or signal handler (a macrotask) stops mid-epoch even when every step settles in microtasks', async () => {
    const controller = new AbortController();
    class AbortSoon extends Callback {
      readonly name = 'abortSoon';
      override onBatchEnd(_batch: number, logs: Record<string, number>): void {
        // As process.on('SIGINT') would: the abort arrives from the macrotask queue, not from the loop itself.
        if (logs.step === 1) setTimeout(() => controller.abort(), 0);
      }
    }
    const a = setup({ signal: controller.signal, callbacks: [new AbortSoon()] });
    // One epoch of 100 in-memory batches: without a macrotask turn per step, the timer would only fire at the end.
    const res = await a.trainer.fit({ train: new FakePairs(800, 8), epochs: 1 });
    expect(res.interrupted).toBe(true);
    const state = a.trainer.getState();
    expect(state.epoch).toBe(0);
    expect(state.batchInEpoch).toBeLessThan(10);
    a.dispose();
  });

  it('an AbortSignal mid-epoch ends fit() cleanly; resuming from that state ends identical to an uninterrupted run', async () => {
    const dir = await tmpDir();
    const controller = new AbortController();
    class AbortAt extends Callback {
      readonly name = 'abortAt';
      override onBatchEnd(batch: number, logs: Record<string, number>): void {
        if (logs.epoch === 1 && batch === 0) controller.abort(); // after 5 updates: epoch 1, batch 1 (4 batches/epoch)
      }
    }
    const a = setup({ signal: controller.signal, callbacks: [new AbortAt()] });
    const ckpt = new ModelCheckpoint({ dir });
    ckpt.setTrainer(a.trainer);
    const res = await a.trainer.fit({ train: new FakePairs(32, 8), epochs: 3 });
    expect(res.interrupted).toBe(true);
    expect(a.trainer.getState()).toMatchObject({ epoch: 1, batchInEpoch: 1, globalStep: 5 });
    await ckpt.writeLast();
    a.dispose();

    const b = setup();
    await b.model.loadWeights(path.join(dir, 'last'));
    await restoreTrainer(path.join(dir, 'last'), b.trainer);
    await b.trainer.fit({ train: new FakePairs(32, 8), epochs: 3 });
    const ref = setup();
    await ref.trainer.fit({ train: new FakePairs(32, 8), epochs: 3 });
    const strip = (h: Record<string, number>[]) => h.map(({ seconds: _s, ...rest }) => rest);
    expect(strip(b.trainer.history)).toEqual(strip(ref.trainer.history));
    for (const [name, w] of ref.model.weights()) expect(Array.from(b.model.weights().get(name)!)).toEqual(Array.from(w));
    b.dispose();
    ref.dispose();
  });

  it('resuming from a directory without trainer state is a TrainingError saying so', async () => {
    const dir = await tmpDir();
    const { trainer, dispose } = setup();
    await expect(restoreTrainer(dir, trainer)).rejects.toThrow(/no trainer-state\.json/);
    dispose();
  });
});
