import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, ValueError } from '@clip-ts/core';
import { CLIPVisionModel, PatchDropout, ViTModel } from '@clip-ts/encoders';
import { BACKENDS } from './helpers.js';

const VIT = { model_type: 'vit', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16, image_size: 16, patch_size: 4 };
const CLIP_VISION = { model_type: 'clip_vision_model', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16, image_size: 16, patch_size: 4 };
// 16×16 images in 4×4 patches: 16 patch tokens + the class token.
const PATCHES = 16;

const towers = {
  vit: (p?: number) => new ViTModel({ ...VIT, ...(p === undefined ? {} : { patch_dropout: p }) }, { seed: 3 }),
  clipVision: (p?: number) => new CLIPVisionModel({ ...CLIP_VISION, ...(p === undefined ? {} : { patch_dropout: p }) }, { seed: 3 }),
};
const pixels = () => tf.randomUniform([2, 3, 16, 16], -1, 1, 'float32', 7) as tf.Tensor4D;

afterAll(async () => {
  await initBackend('cpu');
});

describe.each(Object.entries(towers))('%s patch dropout', (_name, make) => {
  it('eval output is unchanged (all tokens), train output drops patches and differs', async () => {
    await initBackend('cpu');
    const plain = make();
    const dropping = make(0.5);
    const x = pixels();
    const a = plain.encode(x);
    const b = dropping.encode(x);
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    const t = dropping.encode(x, { training: true });
    expect(Array.from(await t.data())).not.toEqual(Array.from(await a.data()));
    tf.dispose([x, a, b, t]);
    plain.dispose();
    dropping.dispose();
  });

  it("train sequence length is 1 + max(1, int(patches · (1 − p))) like open_clip; the setter validates", async () => {
    await initBackend('cpu');
    const tower = make(0.5);
    const x = pixels();
    // open_clip: int(16 · 0.5) = 8, int(16 · 0.7) = int(11.2) = 11, max(1, int(0.16)) = 1.
    for (const [p, kept] of [[0.5, 8], [0.3, 11], [0.99, 1], [0, PATCHES]] as const) {
      tower.patchDropout = p;
      const out = tower.forward(x, { training: true });
      expect(out.lastHiddenState.shape).toEqual([2, 1 + kept, 8]);
      const evalOut = tower.forward(x);
      expect(evalOut.lastHiddenState.shape).toEqual([2, 1 + PATCHES, 8]);
      tf.dispose([...Object.values(out), ...Object.values(evalOut)] as tf.Tensor[]);
    }
    expect(() => (tower.patchDropout = 1)).toThrow(ValueError);
    expect(() => (tower.patchDropout = -0.1)).toThrow(ValueError);
    x.dispose();
    tower.dispose();
  });

  it.each(BACKENDS)('gradients flow on %s: only the kept positions get position-embedding gradient', async (backend) => {
    await initBackend(backend);
    const tower = make(0.75);
    const x = tf.randomUniform([1, 3, 16, 16], -1, 1, 'float32', 9) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const vars = tower.namedVariables();
    const pos = vars.find((v) => /position_embedding/.test(v.name));
    expect(pos).toBeDefined();
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tower.encode(x, { training: true }))) as tf.Scalar, vars.map((v) => v.variable));
    const g = grads[pos!.variable.name] as tf.Tensor;
    const rows = g.shape.length === 3 ? (g.shape[1] as number) : (g.shape[0] as number);
    const gd = await g.data();
    const width = gd.length / rows;
    let nonZeroRows = 0;
    for (let r = 0; r < rows; r++) if (gd.slice(r * width, (r + 1) * width).some((v) => v !== 0)) nonZeroRows++;
    // The class token and int(16 · 0.25) = 4 kept patches.
    expect(nonZeroRows).toBe(1 + 4);
    const patchGrad = Object.entries(grads).find(([name]) => /patch_embedding/.test(name) && /weight/.test(name));
    expect(patchGrad).toBeDefined();
    expect(Math.max(...Array.from(await patchGrad![1].data()).map(Math.abs))).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    tower.dispose();
  });
});

describe('PatchDropout', () => {
  const tokens = (B: number, T: number) => tf.tidy(() => tf.tile(tf.reshape(tf.range(0, T, 1, 'float32'), [1, T, 1]), [B, 1, 2])) as tf.Tensor3D;

  it('keeps the class token first and distinct patch tokens; seeded: the same generator state gives the same pick', async () => {
    await initBackend('cpu');
    const h = tokens(3, 1 + PATCHES);
    const pick = async (d: PatchDropout) => {
      const out = d.apply(h, true);
      const v = Array.from(await out.data());
      out.dispose();
      return v;
    };
    const d = new PatchDropout(new Rng(5), 0.5);
    const first = await pick(d);
    for (let b = 0; b < 3; b++) {
      const row = first.slice(b * 9 * 2, (b + 1) * 9 * 2).filter((_, i) => i % 2 === 0);
      expect(row[0]).toBe(0);
      const patches = row.slice(1);
      expect(new Set(patches).size).toBe(8);
      expect(patches.every((p) => Number.isInteger(p) && p >= 1 && p <= PATCHES)).toBe(true);
    }
    expect(await pick(new PatchDropout(new Rng(5), 0.5))).toEqual(first);
    expect(await pick(d)).not.toEqual(first); // the generator moved on
    expect(d.apply(h, false)).toBe(h);
    expect(new PatchDropout(new Rng(5), 0).apply(h, true)).toBe(h);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) d.apply(h, true).dispose();
    expect(tf.memory().numTensors).toBe(before);
    h.dispose();
  });
});
