import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import type { Optimizer, ParamGroup } from '../../src/optim/index.js';

// The setup test/fixtures/make_torch_traces.py gives PyTorch: four parameters in two groups (towers, heads;
// one decayed and one not in each), deterministic gradients, and the towers' LR changed before step 3.

const paramInit = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(0.7 * i + k));
const gradAt = (n: number, k: number, step: number) =>
  Array.from({ length: n }, (_, i) => Math.cos(0.3 * i * (step + 1) + k) * (1 + 0.1 * step));

/** Replay a trace (parameter values after each step) with the optimizer `make` builds over the groups. */
export function replayTorchTrace(
  make: (groups: ParamGroup[]) => Optimizer,
  trace: { weightDecay: number; params: Array<Record<string, number[]>> },
  options: { restartAt?: number } = {},
): void {
  const vars = {
    tw: tf.variable(tf.tensor1d(paramInit(6, 0))),
    tb: tf.variable(tf.tensor1d(paramInit(3, 1))),
    hw: tf.variable(tf.tensor1d(paramInit(4, 2))),
    hs: tf.variable(tf.tensor1d(paramInit(1, 3))),
  };
  const groups = (): ParamGroup[] => [
    { name: 'towers', lr: 1e-2, weightDecay: trace.weightDecay, params: [
      { name: 'tw', variable: vars.tw, decay: true },
      { name: 'tb', variable: vars.tb, decay: false },
    ] },
    { name: 'heads', lr: 3e-2, weightDecay: trace.weightDecay, params: [
      { name: 'hw', variable: vars.hw, decay: true },
      { name: 'hs', variable: vars.hs, decay: false },
    ] },
  ];
  let opt = make(groups());
  const entries = Object.entries(vars);
  trace.params.forEach((expected, step) => {
    // A resume: the optimizer rebuilt from getState() must continue on the same trajectory.
    if (step === options.restartAt) {
      const state = opt.getState();
      opt.dispose();
      opt = make(groups());
      opt.setState(state);
      tf.dispose([...state.tensors.values()]);
    }
    if (step === 3) opt.setLr('towers', 5e-3);
    const grads = new Map(entries.map(([, v], k) => [v, tf.tensor1d(gradAt(v.size, k, step))] as const));
    opt.applyGradients(grads);
    tf.dispose([...grads.values()]);
    for (const [name, v] of entries) {
      const got = Array.from(v.dataSync());
      const want = expected[name] as number[];
      got.forEach((x, i) => expect(Math.abs(x - (want[i] as number))).toBeLessThan(2e-6));
    }
  });
  expect(opt.step).toBe(trace.params.length);
  opt.dispose();
  tf.dispose(Object.values(vars));
}
