import * as path from 'node:path';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { CLIPModel, initBackend } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import type { CaptionBatch } from '@clip-ts/data';
import '@clip-ts/encoders';
import { runExperiment } from '../src/experiment/index.js';
import { clipModelTask } from '../src/experiment/model.js';
import { MIN_ROWS_PER_REPLICA, ParallelError, ReplicaPool, parallelModelTask, resolveWorkers, shardRows, threadsPerReplica } from '../src/parallel/index.js';
import { batchNormTower, cacheExpected, plannedReplicas } from '../src/experiment/replicas.js';
import { parseExperimentConfig } from '../src/config/load.js';
import type { ExperimentConfigInput } from '../src/config/schema.js';
import { tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

// Worker threads run the built worker (dist/parallel/worker.js): `npm run build` before these tests.
const tmpDir = useTmpDirs('clip-par-');
const quiet = { stdout: () => {}, stderr: () => {} };
const strip = (h: Record<string, number>[]) => h.map(({ seconds: _s, ...rest }) => rest);
async function weights(dir: string): Promise<Map<string, Float32Array>> {
  const st = await readSafetensors(path.join(dir, 'model.safetensors'));
  return new Map([...st.tensors].map(([k, t]) => [k, Float32Array.from(t.data as ArrayLike<number>)]));
}
const workers = (c: ExperimentConfigInput, n: number): ExperimentConfigInput => ({ ...c, training: { workers: n } });
const withDropout = (c: ExperimentConfigInput): ExperimentConfigInput => {
  const vision = (c.model!.vision as { config: { model_type: string } }).config;
  const text = (c.model!.text as { config: { model_type: string } }).config;
  return { ...c, model: { ...c.model!, head: 'mlp' as const, dropout: 0.2, vision: { config: { ...vision, hidden_dropout_prob: 0.1 } }, text: { config: { ...text, dropout: 0.1 } } } };
};

describe('shardRows / resolveWorkers', () => {
  it('splits every row exactly once, larger shards first, empty shards when rows run out', () => {
    for (const [b, n] of [[8, 2], [7, 3], [2, 3], [1, 2]] as const) {
      const shards = Array.from({ length: n }, (_, r) => shardRows(b, n, r));
      expect(shards[0]!.start).toBe(0);
      shards.forEach((s, r) => {
        if (r > 0) expect(s.start).toBe(shards[r - 1]!.end);
        expect(s.end - s.start).toBe(Math.floor(b / n) + (r < b % n ? 1 : 0));
      });
      expect(shards[n - 1]!.end).toBe(b);
    }
  });

  it("'auto' (the default) uses the cores only where replicas help: wasm/cpu, towers trained, ≥ MIN_ROWS_PER_REPLICA rows each", () => {
    const wasm = { backend: 'wasm', useCache: false, cores: 4 };
    expect(resolveWorkers(undefined, { ...wasm, batchSize: 64 })).toBe(4);
    expect(resolveWorkers('auto', { ...wasm, batchSize: 64 })).toBe(4);
    // Fewer rows than cores × MIN_ROWS_PER_REPLICA: only as many replicas as get that many rows.
    expect(resolveWorkers('auto', { ...wasm, batchSize: 2 * MIN_ROWS_PER_REPLICA + 1 })).toBe(2);
    expect(resolveWorkers('auto', { ...wasm, batchSize: 2 * MIN_ROWS_PER_REPLICA - 1 })).toBe(1);
    expect(resolveWorkers('auto', { ...wasm, batchSize: 64, cores: 1 })).toBe(1);
    expect(resolveWorkers('auto', { ...wasm, backend: 'cpu', batchSize: 64 })).toBe(4);
    expect(resolveWorkers('auto', { ...wasm, backend: 'tensorflow', batchSize: 64 })).toBe(1);
    expect(resolveWorkers('auto', { ...wasm, useCache: true, batchSize: 64 })).toBe(1);
    // A count is taken as given, but never more replicas than rows.
    expect(resolveWorkers(3, { backend: 'cpu', useCache: false, batchSize: 2, cores: 4 })).toBe(2);
    expect(resolveWorkers(2, { backend: 'tensorflow', useCache: true, batchSize: 8, cores: 4 })).toBe(2);
  });

  it('threadsPerReplica splits the cores; one replica keeps the backend default', () => {
    expect(threadsPerReplica(1, 4)).toBeUndefined();
    expect(threadsPerReplica(2, 4)).toBe(2);
    expect(threadsPerReplica(2, 2)).toBe(1);
    expect(threadsPerReplica(3, 2)).toBe(1);
  });

  it('plannedReplicas reads the config: cache runs, distillation, tfjs-node and small batches keep one replica', () => {
    const cores = availableParallelism();
    const base = (over: Partial<ExperimentConfigInput>) => parseExperimentConfig(tinyConfig('x', { backend: 'wasm', data: { ...tinyConfig('x').data, batchSize: 64 }, ...over }));
    expect(plannedReplicas(base({}))).toBe(Math.min(cores, 4));
    expect(plannedReplicas(base({ backend: 'tensorflow' }))).toBe(1);
    expect(plannedReplicas(base({ backend: 'auto' }), 'tensorflow')).toBe(1);
    expect(plannedReplicas(base({ backend: 'auto' }), undefined)).toBe(Math.min(cores, 4));
    const frozen = base({ model: { ...tinyConfig('x').model!, freeze: 'towers' } });
    expect(cacheExpected(frozen)).toBe(true);
    // The cache build: the shapes set's 24 training images are too few for a pool, its default 4000 are not.
    expect(plannedReplicas(frozen)).toBe(1);
    const big = base({ model: { ...tinyConfig('x').model!, freeze: 'towers' }, data: { ...tinyConfig('x').data, batchSize: 64, dataset: { kind: 'shapes', options: {} } } });
    expect(plannedReplicas(big)).toBe(Math.min(cores, 4));
    expect(cacheExpected(base({ model: { ...tinyConfig('x').model!, freeze: 'towers' }, featureCache: { enabled: false } }))).toBe(false);
    expect(plannedReplicas(base({ training: { workers: 1 } }))).toBe(1);
    expect(plannedReplicas(base({ training: { workers: 3 } }))).toBe(3);
    expect(plannedReplicas(parseExperimentConfig(tinyConfig('x')))).toBe(1);
  });

  it('batchNormTower names a trained tower with batch-norm statistics (replicas would take them per shard)', async () => {
    await initBackend('cpu');
    const text = { model_type: 'distilbert', vocab_size: 50, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 8 };
    const resnet = CLIPModel.fromConfig({ model_type: 'clip-ts', projection_dim: 8, vision_config: { model_type: 'resnet', hidden_sizes: [8, 16], depths: [1, 1], embedding_size: 8, layer_type: 'basic' }, text_config: text }, { seed: 1 });
    const vit = CLIPModel.fromConfig({ model_type: 'clip-ts', projection_dim: 8, vision_config: { model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 }, text_config: text }, { seed: 1 });
    try {
      expect(batchNormTower(resnet, { vision: false, text: false })).toBe('vision');
      expect(batchNormTower(resnet, { vision: true, text: false })).toBeUndefined();
      expect(batchNormTower(vit, { vision: false, text: false })).toBeUndefined();
    } finally {
      resnet.dispose();
      vit.dispose();
    }
  });
});

describe('data-parallel training (runExperiment, training.workers)', () => {
  it('2 replicas follow 1 replica: same loss history and weights within float-summation tolerance', async () => {
    const a = await tmpDir();
    const b = await tmpDir();
    // SGD: the update is linear in the gradient, so the weights differ only by the gradients' summation
    // order (Adam's normalised step would magnify those float differences for near-zero gradients).
    const sgd = (dir: string) => tinyConfig(dir, { optim: { name: 'sgd', lr: 0.5 } });
    const one = await runExperiment(sgd(a), { io: quiet });
    const two = await runExperiment(workers(sgd(b), 2), { io: quiet });
    expect(two.history.length).toBe(one.history.length);
    two.history.forEach((h, i) => {
      for (const [k, v] of Object.entries(h)) if (k !== 'seconds') expect(v, k).toBeCloseTo(one.history[i]![k]!, 4);
    });
    const w1 = await weights(path.join(a, 'last'));
    const w2 = await weights(path.join(b, 'last'));
    expect([...w2.keys()]).toEqual([...w1.keys()]);
    for (const [k, x] of w1) {
      const y = w2.get(k)!;
      x.forEach((v, i) => {
        expect(Math.abs(y[i]! - v), `${k}[${i}]`).toBeLessThan(1e-5 + 1e-4 * Math.abs(v));
      });
    }
  });

  it('with dropout, two runs with 2 replicas are bit-identical; interrupting and resuming one is exact', async () => {
    const a = await tmpDir();
    const b = await tmpDir();
    const c = await tmpDir();
    const first = await runExperiment(workers(withDropout(tinyConfig(a)), 2), { io: quiet });
    const second = await runExperiment(workers(withDropout(tinyConfig(b)), 2), { io: quiet });
    expect(strip(second.history)).toEqual(strip(first.history));
    expect(await weights(path.join(b, 'last'))).toEqual(await weights(path.join(a, 'last')));
    // Dropout really is on: a single replica (other masks per row) ends elsewhere.
    const single = await runExperiment(withDropout(tinyConfig(await tmpDir())), { io: quiet });
    expect(strip(single.history)).not.toEqual(strip(first.history));

    // Ctrl-C after epoch 1 of 2, then resume: ends exactly like the uninterrupted 2-replica run.
    const controller = new AbortController();
    const ioAbort = { stdout: () => {}, stderr: (t: string) => void (t.startsWith('epoch 1/2') && controller.abort()) };
    const r1 = await runExperiment(workers(withDropout(tinyConfig(c)), 2), { io: ioAbort, signal: controller.signal });
    expect(r1.interrupted).toBe(true);
    const resumed = await runExperiment(workers(withDropout(tinyConfig(c)), 2), { io: quiet, resume: true });
    expect(strip(resumed.history)).toEqual(strip(first.history));
    expect(await weights(path.join(c, 'last'))).toEqual(await weights(path.join(a, 'last')));
  });

  it('a worker that throws or exits gives a ParallelError naming it, without hanging; the pool leaks no tensors', async () => {
    await initBackend('cpu');
    const model = CLIPModel.fromConfig(
      {
        model_type: 'clip-ts',
        projection_dim: 8,
        vision_config: { model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 },
        text_config: { model_type: 'distilbert', vocab_size: 50, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 8, dropout: 0, attention_dropout: 0 },
      },
      { seed: 1 },
    );
    const frozen = { vision: false, text: false };
    const batch = (): CaptionBatch => ({
      pixelValues: tf.randomNormal([5, 3, 16, 16], 0, 1, 'float32', 7) as tf.Tensor4D,
      inputIds: tf.tensor2d([1, 5, 6, 2, 0, 0, 1, 7, 2, 0, 0, 0, 1, 8, 9, 10, 2, 0, 1, 11, 2, 0, 0, 0, 1, 12, 13, 2, 0, 0], [5, 6], 'int32'),
      attentionMask: tf.tensor2d([1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0], [5, 6], 'int32'),
      indices: [0, 1, 2, 3, 4],
      captionIndices: [0, 0, 0, 0, 0],
      captions: ['a', 'b', 'c', 'd', 'e'],
    });
    const variables = model.trainableVariables();
    try {
      // Healthy pool: the gradient equals the single-replica one, and steps leak nothing.
      const pool = await ReplicaPool.start(model, { replicas: 3, maxBatch: 8, frozen, timeoutMs: 20_000 });
      try {
        const task = parallelModelTask(model, frozen, pool, 'diagonal');
        const plain = clipModelTask(model, frozen, 'diagonal');
        const b = batch();
        const ref = tf.variableGrads(() => plain.trainLoss(b), variables);
        const before = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) {
          const got = task.lossAndGrads!(b, variables);
          expect(got.value.dataSync()[0]).toBeCloseTo(ref.value.dataSync()[0]!, 5);
          for (const v of variables) {
            const x = ref.grads[v.name]!.dataSync();
            const y = got.grads[v.name]!.dataSync();
            x.forEach((e, k) => expect(Math.abs(y[k]! - e), `${v.name}[${k}]`).toBeLessThan(1e-5 + 1e-3 * Math.abs(e)));
          }
          tf.dispose([got.value, ...Object.values(got.grads)]);
        }
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([ref.value, ...Object.values(ref.grads)]);
        plain.disposeBatch(b);
      } finally {
        pool.close();
      }
      for (const kind of ['throw', 'exit'] as const) {
        const bad = await ReplicaPool.start(model, { replicas: 2, maxBatch: 8, frozen, timeoutMs: 15_000, fault: { replica: 1, step: 1, kind } });
        try {
          const b = batch();
          const ok = bad.lossAndGrads(b, variables, undefined);
          tf.dispose([ok.value, ...Object.values(ok.grads)]);
          const before = tf.memory().numTensors;
          const started = Date.now();
          const err = (() => {
            try {
              bad.lossAndGrads(b, variables, undefined);
            } catch (e) {
              return e;
            }
          })();
          expect(err).toBeInstanceOf(ParallelError);
          expect((err as Error).message).toMatch(kind === 'throw' ? /replica 1, step 1: injected fault/ : /replica 1 exited/);
          expect(() => bad.lossAndGrads(b, variables, undefined)).toThrow(/failed earlier/);
          expect(Date.now() - started).toBeLessThan(10_000);
          expect(tf.memory().numTensors).toBe(before);
          tf.dispose([b.pixelValues, b.inputIds, b.attentionMask]);
        } finally {
          bad.close();
        }
      }
    } finally {
      model.dispose();
    }
  });
});
