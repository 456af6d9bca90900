/**
 * A tiny stand-in for CLIPModel (two one-layer "towers", linear heads, a logit scale) with the same
 * variable naming, used to test the training engine without the real towers.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, clipLoss, tensorToWritable, type NamedVariable } from '@clip-ts/core';
import { readSafetensors, writeSafetensors } from '@clip-ts/core/node';
import type { BatchSource, EvalOutputs, TrainTask, TrainableModel } from '../../src/trainer/types.js';

export interface PairBatch {
  x: tf.Tensor2D;
  y: tf.Tensor2D;
}

export class FakeClip implements TrainableModel {
  readonly vars: NamedVariable[];
  constructor(
    readonly dIn = 6,
    readonly dHidden = 8,
    readonly dProj = 4,
    seed = 1,
  ) {
    const init = (shape: number[], s: number) => tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, 0.5, 'float32', seed * 100 + s)));
    this.vars = [
      { name: 'vision_model.dense.weight', variable: init([dIn, dHidden], 1), noDecay: false },
      { name: 'vision_model.dense.bias', variable: tf.variable(tf.zeros([dHidden])), noDecay: true },
      { name: 'text_model.dense.weight', variable: init([dIn, dHidden], 2), noDecay: false },
      { name: 'visual_projection.weight', variable: init([dHidden, dProj], 3), noDecay: false },
      { name: 'text_projection.weight', variable: init([dHidden, dProj], 4), noDecay: false },
      { name: 'logit_scale', variable: tf.variable(tf.scalar(Math.log(1 / 0.07))), noDecay: true },
    ];
  }

  v(name: string): tf.Variable {
    return (this.vars.find((n) => n.name === name) as NamedVariable).variable;
  }

  namedVariables(): NamedVariable[] {
    return this.vars;
  }

  imageFeatures(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.tanh(tf.add(tf.matMul(x, this.v('vision_model.dense.weight')), this.v('vision_model.dense.bias'))) as tf.Tensor2D);
  }

  textFeatures(y: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.tanh(tf.matMul(y, this.v('text_model.dense.weight'))) as tf.Tensor2D);
  }

  project(fi: tf.Tensor2D, ft: tf.Tensor2D): { img: tf.Tensor2D; txt: tf.Tensor2D } {
    return { img: tf.matMul(fi, this.v('visual_projection.weight')), txt: tf.matMul(ft, this.v('text_projection.weight')) };
  }

  lossFromFeatures(fi: tf.Tensor2D, ft: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => {
      const { img, txt } = this.project(fi, ft);
      return clipLoss(img, txt, this.v('logit_scale'));
    });
  }

  loss(batch: PairBatch): tf.Scalar {
    return tf.tidy(() => this.lossFromFeatures(this.imageFeatures(batch.x), this.textFeatures(batch.y)));
  }

  async save(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true });
    await writeSafetensors(path.join(dir, 'model.safetensors'), new Map(this.vars.map((nv) => [nv.name, tensorToWritable(nv.variable)])));
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ dIn: this.dIn, dHidden: this.dHidden, dProj: this.dProj }));
  }

  async loadWeights(dir: string): Promise<void> {
    const st = await readSafetensors(path.join(dir, 'model.safetensors'));
    for (const nv of this.vars) {
      const t = st.tensors.get(nv.name);
      if (!t) throw new Error(`missing ${nv.name}`);
      tf.tidy(() => nv.variable.assign(tf.tensor(t.data, t.shape, 'float32')));
    }
  }

  weights(): Map<string, Float32Array> {
    return new Map(this.vars.map((nv) => [nv.name, nv.variable.dataSync() as Float32Array]));
  }

  dispose(): void {
    tf.dispose(this.vars.map((n) => n.variable));
  }
}

export function fakeTask(model: FakeClip): TrainTask<PairBatch> {
  return {
    trainLoss: (b) => model.loss(b),
    evalOutputs: (b): EvalOutputs =>
      tf.tidy(() => {
        const fi = model.imageFeatures(b.x);
        const ft = model.textFeatures(b.y);
        const { img, txt } = model.project(fi, ft);
        return { loss: model.lossFromFeatures(fi, ft), imageEmbeds: img, textEmbeds: txt };
      }),
    batchSize: (b) => b.x.shape[0],
    disposeBatch: (b) => tf.dispose([b.x, b.y]),
  };
}

/** N matching pairs: y is a fixed linear mix of x plus a little noise; batches reshuffled per epoch by seed. */
export class FakePairs implements BatchSource<PairBatch> {
  readonly xs: number[][];
  readonly ys: number[][];
  /** Batches handed out so far (to check early stopping / skips). */
  served = 0;
  constructor(
    readonly n = 32,
    readonly batchSize = 8,
    readonly dim = 6,
    readonly seed = 7,
    readonly shuffle = true,
  ) {
    const rng = new Rng(seed);
    this.xs = Array.from({ length: n }, () => Array.from({ length: dim }, () => rng.next() * 2 - 1));
    this.ys = this.xs.map((x) => x.map((_, j) => (x[(j + 1) % dim] as number) * 0.8 - (x[j] as number) * 0.3 + (rng.next() - 0.5) * 0.1));
  }

  async *batches(epoch: number, options: { startBatch?: number } = {}): AsyncIterable<PairBatch> {
    const order = Array.from({ length: this.n }, (_, i) => i);
    if (this.shuffle) new Rng(this.seed * 31 + epoch).shuffle(order);
    for (let i = (options.startBatch ?? 0) * this.batchSize; i + this.batchSize <= this.n; i += this.batchSize) {
      const idx = order.slice(i, i + this.batchSize);
      this.served += 1;
      yield { x: tf.tensor2d(idx.map((k) => this.xs[k] as number[])), y: tf.tensor2d(idx.map((k) => this.ys[k] as number[])) };
    }
  }
}
