import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { CLIPModel, initBackend } from '@clip-ts/core';
import type { CaptionBatch } from '@clip-ts/data';
import '@clip-ts/encoders';
import { clipModelTask } from '../src/experiment/model.js';
import { heapView, tensorCopiesValues } from '../src/parallel/heap-view.js';
import { ReplicaPool, parallelModelTask } from '../src/parallel/index.js';

// The wasm backend takes the pool's zero-copy paths (heap views, in-place weight refresh); the other
// parallel tests run on cpu, which takes the copying ones. Workers run dist/parallel/worker.js (npm run build).

describe('heap views (wasm)', () => {
  it('read a tensor without copying; tf.tensor copies its values on wasm only', async () => {
    await initBackend('wasm', { threads: 1 });
    const t = tf.tensor1d([1.5, -2, 3]);
    const view = heapView(t);
    expect(view && Array.from(view)).toEqual([1.5, -2, 3]);
    expect(tensorCopiesValues()).toBe(true);
    const shared = new Float32Array([1, 2]);
    const copy = tf.tensor1d(shared);
    shared[0] = 9;
    expect(Array.from(copy.dataSync())).toEqual([1, 2]);
    tf.dispose([t, copy]);

    await initBackend('cpu');
    const c = tf.variable(tf.tensor1d([1, 2]));
    expect(heapView(c)).toBeUndefined();
    expect(tensorCopiesValues()).toBe(false);
    c.dispose();
  });
});

describe('ReplicaPool on wasm', () => {
  it('follows weight changes between steps and matches the single-replica gradient; leaks nothing', async () => {
    await initBackend('wasm', { threads: 1 });
    const model = CLIPModel.fromConfig(
      {
        model_type: 'clip-ts',
        projection_dim: 8,
        vision_config: { model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 },
        text_config: { model_type: 'distilbert', vocab_size: 50, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 8, dropout: 0, attention_dropout: 0 },
      },
      { seed: 3 },
    );
    const frozen = { vision: false, text: false };
    const b: CaptionBatch = {
      pixelValues: tf.randomNormal([4, 3, 16, 16], 0, 1, 'float32', 5) as tf.Tensor4D,
      inputIds: tf.tensor2d([1, 5, 6, 2, 0, 0, 1, 7, 2, 0, 0, 0, 1, 8, 9, 10, 2, 0, 1, 11, 2, 0, 0, 0], [4, 6], 'int32'),
      attentionMask: tf.tensor2d([1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0], [4, 6], 'int32'),
      indices: [0, 1, 2, 3],
      captionIndices: [0, 0, 0, 0],
      captions: ['a', 'b', 'c', 'd'],
    };
    const variables = model.trainableVariables();
    const pool = await ReplicaPool.start(model, { replicas: 2, maxBatch: 4, frozen, timeoutMs: 20_000 });
    try {
      const task = parallelModelTask(model, frozen, pool, 'diagonal');
      const plain = clipModelTask(model, frozen, 'diagonal');
      for (let step = 0; step < 3; step++) {
        // What an optimizer step does: new values for every weight. A replica that kept stale weights
        // (or main reading stale values) would give another gradient; an in-place write into the worker's
        // weights did, through the wasm backend's cached packed XNNPACK weights.
        if (step > 0) for (const v of variables) tf.tidy(() => v.assign(tf.add(v, tf.mul(tf.randomNormal(v.shape, 0, 1, 'float32', step), 0.05))));
        const ref = tf.variableGrads(() => plain.trainLoss(b), variables);
        const before = tf.memory().numTensors;
        const got = task.lossAndGrads!(b, variables);
        expect(got.value.dataSync()[0], `loss at step ${step}`).toBeCloseTo(ref.value.dataSync()[0]!, 5);
        for (const v of variables) {
          const x = ref.grads[v.name]!.dataSync();
          const y = got.grads[v.name]!.dataSync();
          x.forEach((e, k) => expect(Math.abs(y[k]! - e), `step ${step} ${v.name}[${k}]`).toBeLessThan(1e-5 + 1e-3 * Math.abs(e)));
        }
        tf.dispose([got.value, ...Object.values(got.grads)]);
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([ref.value, ...Object.values(ref.grads)]);
      }
      // Every step was timed on both replicas.
      const times = pool.timings();
      expect(times).toHaveLength(2);
      expect(times[0]!.towers).toBeGreaterThan(0);
      expect(times[1]!.lossBackward).toBeGreaterThan(0);
      plain.disposeBatch(b);
    } finally {
      pool.close();
    }
  });
});
