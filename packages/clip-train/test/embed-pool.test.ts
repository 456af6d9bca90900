import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIPModel, ShapeError, initBackend } from '@clip-ts/core';
import '@clip-ts/encoders';
import { EmbedPool, ParallelError } from '../src/parallel/index.js';

// Worker threads run the built worker (dist/parallel/embed-worker.js): `npm run build` before these tests.
let model: CLIPModel;
beforeAll(async () => {
  await initBackend('cpu');
  model = CLIPModel.fromConfig(
    {
      model_type: 'clip-ts',
      projection_dim: 8,
      vision_config: { model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 },
      text_config: { model_type: 'distilbert', vocab_size: 50, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 8, dropout: 0.1, attention_dropout: 0.1 },
    },
    { seed: 1 },
  );
});
afterAll(() => model.dispose());

const N = 7;
const pixels = () => tf.randomNormal([N, 3, 16, 16], 0, 1, 'float32', 7) as tf.Tensor4D;
function texts(): { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D } {
  const ids: number[] = [];
  const mask: number[] = [];
  for (let r = 0; r < N; r++) {
    for (let s = 0; s < 6; s++) {
      const on = s < 2 + (r % 4);
      ids.push(on ? 1 + ((r * 7 + s * 3) % 40) : 0);
      mask.push(on ? 1 : 0);
    }
  }
  return { inputIds: tf.tensor2d(ids, [N, 6], 'int32'), attentionMask: tf.tensor2d(mask, [N, 6], 'int32') };
}
const close = (got: Float32Array, want: Float32Array | Int32Array | Uint8Array) => {
  expect(got.length).toBe(want.length);
  want.forEach((e, k) => expect(Math.abs(got[k]! - e), `[${k}]`).toBeLessThan(1e-5 + 1e-4 * Math.abs(e)));
};

describe('EmbedPool (forward-only data parallelism)', () => {
  it('gives the single-process embeddings and features, rows in input order, and leaks no tensor', async () => {
    const pool = await EmbedPool.start(model, { replicas: 3, timeoutMs: 20_000 });
    try {
      const px = pixels();
      const tx = texts();
      const refs = tf.tidy(() => [
        model.encodeImages(px),
        model.encodeTexts(tx),
        model.imageEncoder.encode(px, { training: false }),
        model.textEncoder.encode(tx, { training: false }),
      ]);
      const want = refs.map((t) => t.dataSync().slice());
      tf.dispose(refs);
      const before = tf.memory().numTensors;
      for (let rep = 0; rep < 2; rep++) {
        // Every row is checked, so a shard written at the wrong offset or a replica with other weights fails.
        close(await pool.embedImages(px), want[0]!);
        close(await pool.embedTexts(tx), want[1]!);
        close(await pool.imageFeatures(px), want[2]!);
        close(await pool.textFeatures(tx), want[3]!);
      }
      expect(tf.memory().numTensors).toBe(before);
      // Fewer rows than replicas: the empty shards are skipped.
      const one = tf.tidy(() => tf.slice(px, [3], [1]) as tf.Tensor4D);
      close(await pool.embedImages(one), want[0]!.subarray(3 * 8, 4 * 8));
      tf.dispose([one, px, tx.inputIds, tx.attentionMask]);
    } finally {
      pool.close();
    }
    await expect(pool.embedImages(pixels())).rejects.toThrow(/closed/);
  });

  it('bad input is a ShapeError; a worker that throws or exits gives a ParallelError naming it, without hanging', async () => {
    await expect(EmbedPool.start(model, { replicas: 1 })).rejects.toBeInstanceOf(ParallelError);
    for (const kind of ['throw', 'exit'] as const) {
      const pool = await EmbedPool.start(model, { replicas: 2, timeoutMs: 15_000, fault: { replica: 1, request: 1, kind } });
      const px = pixels();
      try {
        await expect(pool.embedImages(tf.zeros([2, 3]) as unknown as tf.Tensor4D)).rejects.toBeInstanceOf(ShapeError);
        expect((await pool.embedImages(px)).length).toBe(N * 8);
        const started = Date.now();
        const before = tf.memory().numTensors;
        const err = await pool.embedImages(px).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ParallelError);
        expect((err as Error).message).toMatch(kind === 'throw' ? /replica 1, request 1: injected fault/ : /replica 1 exited/);
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(tf.memory().numTensors).toBe(before);
        if (kind === 'exit') await expect(pool.embedImages(px)).rejects.toThrow(/cannot continue/);
      } finally {
        px.dispose();
        pool.close();
      }
    }
  });
});
