import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initBackend } from '@clip-ts/core';
import { AdamOptimizer, type ParamGroup } from '../src/optim/index.js';

type Kind = 'adam' | 'adamw';

interface Setup {
  vars: tf.Variable[];
  groups: ParamGroup[];
}

/** Weights of the given sizes in two groups: 'towers' with `wd` (its last weight exempt from decay), 'heads' without. */
function setup(sizes: readonly number[], wd: number, seed: number): Setup {
  // In tidy: the initial values are disposed, so each variable is the only holder of its storage.
  const vars = tf.tidy(() => sizes.map((n, i) => tf.variable(tf.randomNormal([n], 0, 1, 'float32', seed + i))));
  const towers = vars.slice(0, Math.max(1, vars.length - 1));
  const heads = vars.slice(towers.length);
  const groups: ParamGroup[] = [
    { name: 'towers', lr: 1e-3, weightDecay: wd, params: towers.map((v, i) => ({ name: `t${i}`, variable: v, decay: i < towers.length - 1 || towers.length === 1 })) },
    { name: 'heads', lr: 3e-2, weightDecay: 0, params: heads.map((v, i) => ({ name: `h${i}`, variable: v, decay: true })) },
  ];
  return { vars, groups };
}

/** Step `s`'s gradients (seeded; mixed scales). The caller disposes them. */
function gradsFor(vars: readonly tf.Variable[], s: number): Map<tf.Variable, tf.Tensor> {
  return new Map(vars.map((v, i) => [v, tf.tidy(() => tf.mul(tf.randomNormal(v.shape, 0, 1, 'float32', 1000 * s + i + 1), tf.randomUniform(v.shape, 1e-3, 2, 'float32', 1000 * s + i + 500)))]));
}

function step(opt: AdamOptimizer, vars: readonly tf.Variable[], s: number): void {
  const grads = gradsFor(vars, s);
  if (s === 2) opt.setLr('towers', 5e-4);
  opt.applyGradients(grads);
  tf.dispose([...grads.values()]);
}

const bits = (t: tf.Tensor): number[] => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

/** Weights and state after `steps` steps, as bit patterns by name. */
function trained(kind: Kind, fused: boolean, sizes: readonly number[], wd: number, steps: number): Map<string, number[]> {
  const { vars, groups } = setup(sizes, wd, 7);
  const opt = new AdamOptimizer(groups, { kind, fused });
  for (let s = 1; s <= steps; s++) step(opt, vars, s);
  const out = new Map<string, number[]>(vars.map((v, i) => [`w${i}`, bits(v)]));
  const state = opt.getState();
  for (const [k, t] of state.tensors) out.set(k, bits(t));
  tf.dispose([...state.tensors.values()]);
  opt.dispose();
  tf.dispose(vars);
  return out;
}

const sizeSets = [[5, 3, 1], [64, 17], ...fc.sample(fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 4 }), { numRuns: 4, seed: 3 })];
const SETUPS = [
  { name: 'cpu', init: () => initBackend('cpu') },
  { name: 'wasm, 1 thread', init: () => initBackend('wasm', { threads: 1 }) },
  { name: 'wasm, 2 threads', init: () => initBackend('wasm', { threads: 2 }) },
] as const;

describe.each(SETUPS)('AdamOptimizer fused update on $name', ({ init }) => {
  it.each(['adam', 'adamw'] as const)('%s: weights and moments bit-identical to the tensor path (with and without decay, odd sizes, 4 steps)', async (kind) => {
    await init();
    for (const wd of [0, 0.05]) {
      for (const sizes of sizeSets) {
        const ref = trained(kind, false, sizes, wd, 4);
        const got = trained(kind, true, sizes, wd, 4);
        expect([...got.keys()].sort()).toEqual([...ref.keys()].sort());
        for (const [k, v] of ref) expect(got.get(k), `${kind} wd ${wd} sizes ${sizes.join(',')}: ${k}`).toEqual(v);
      }
    }
  });

  it('after the first step (which creates the moments) a step runs no update kernel (on wasm one copy per weight into new storage) and leaks nothing over 20 steps', async () => {
    await init();
    const { vars, groups } = setup([300, 41, 7], 0.05, 3);
    const opt = new AdamOptimizer(groups, { kind: 'adamw' });
    step(opt, vars, 1);
    const before = tf.memory().numTensors;
    const grads = gradsFor(vars, 2);
    const profile = await tf.profile(() => opt.applyGradients(grads));
    // wasm: ×1 copies each weight into new storage (XNNPACK's packed-weight cache is keyed by tensor id).
    expect(profile.kernels.map((k) => k.name)).toEqual(tf.getBackend() === 'wasm' ? vars.map(() => 'Multiply') : []);
    tf.dispose([...grads.values()]);
    for (let s = 3; s <= 22; s++) step(opt, vars, s);
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    tf.dispose(vars);
  });

  it('a clone or an EMA-style copy of a weight taken before a step keeps its old value', async () => {
    await init();
    const { vars, groups } = setup([33, 8], 0, 5);
    const ref = setup([33, 8], 0, 5);
    const opt = new AdamOptimizer(groups, { kind: 'adam' });
    const refOpt = new AdamOptimizer(ref.groups, { kind: 'adam', fused: false });
    step(opt, vars, 1);
    step(refOpt, ref.vars, 1);
    const old = vars.map((v) => Array.from(v.dataSync()));
    const clones = vars.map((v) => tf.clone(v));
    // tf.variable(v) shares v's storage on every backend, as ModelEma's shadows do.
    const shadows = vars.map((v) => tf.variable(v, false));
    step(opt, vars, 2);
    step(refOpt, ref.vars, 2);
    clones.forEach((c, i) => expect(Array.from(c.dataSync())).toEqual(old[i]));
    shadows.forEach((c, i) => expect(Array.from(c.dataSync())).toEqual(old[i]));
    vars.forEach((v, i) => expect(bits(v)).toEqual(bits(ref.vars[i] as tf.Variable)));
    tf.dispose([...clones, ...shadows]);
    opt.dispose();
    refOpt.dispose();
    tf.dispose([...vars, ...ref.vars]);
  });

  it('getState/setState round trip: a restored optimizer continues bit-identically; the saved tensors keep their values', async () => {
    await init();
    const a = setup([129, 10], 0.05, 9);
    const b = setup([129, 10], 0.05, 9);
    const oa = new AdamOptimizer(a.groups, { kind: 'adamw' });
    for (let s = 1; s <= 2; s++) step(oa, a.vars, s);
    const state = oa.getState();
    const saved = new Map([...state.tensors].map(([k, t]) => [k, bits(t)]));
    b.vars.forEach((v, i) => v.assign(a.vars[i] as tf.Variable));
    const ob = new AdamOptimizer(b.groups, { kind: 'adamw' });
    ob.setState(state);
    for (let s = 3; s <= 5; s++) {
      step(oa, a.vars, s);
      step(ob, b.vars, s);
    }
    // The optimizer copied them (or shares them and so takes the tensor path): ours are unchanged.
    for (const [k, t] of state.tensors) expect(bits(t), k).toEqual(saved.get(k));
    tf.dispose([...state.tensors.values()]);
    b.vars.forEach((v, i) => expect(bits(v)).toEqual(bits(a.vars[i] as tf.Variable)));
    const sa = oa.getState();
    const sb = ob.getState();
    for (const [k, t] of sa.tensors) expect(bits(sb.tensors.get(k) as tf.Tensor), k).toEqual(bits(t));
    tf.dispose([...sa.tensors.values(), ...sb.tensors.values()]);
    oa.dispose();
    ob.dispose();
    tf.dispose([...a.vars, ...b.vars]);
  });
});
