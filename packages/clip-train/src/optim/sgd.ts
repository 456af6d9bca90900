import * as tf from '@tensorflow/tfjs-core';
import { ValueError } from '@clip-ts/core';
import { checkRate } from './check-rate.js';
import { GroupedOptimizer } from './grouped-optimizer.js';
import type { ParamGroup } from './optimizer.js';

export interface SGDOptions {
  /** Momentum factor (default 0: plain SGD, no state). */
  momentum?: number;
  /** Dampening of the gradient added to the momentum buffer (default 0). */
  dampening?: number;
  /** Nesterov momentum; needs momentum > 0 and dampening 0, as in PyTorch. */
  nesterov?: boolean;
}

/**
 * Stochastic gradient descent with torch.optim.SGD semantics: weight decay added to the gradient
 * (per group, skipped for no-decay parameters), the momentum buffer starts as a copy of the first
 * gradient (not zero) and then `buf = momentum·buf + (1 − dampening)·g`, Nesterov uses `g + momentum·buf`,
 * and `p -= lr·update`. The buffer is saved as `momentum_buffer.<name>` (PyTorch's name).
 */
export class SGDOptimizer extends GroupedOptimizer {
  readonly kind = 'sgd';
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;

  constructor(groups: ParamGroup[], options: SGDOptions = {}) {
    const momentum = options.momentum ?? 0;
    super(groups, momentum !== 0 ? ['momentum_buffer'] : []);
    this.momentum = momentum;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    checkRate('momentum', this.momentum);
    checkRate('dampening', this.dampening);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new ValueError('optimizer: Nesterov momentum requires a momentum > 0 and zero dampening');
    }
  }

  override applyGradients(grads: ReadonlyMap<tf.Variable, tf.Tensor>): void {
    this.stepCount += 1;
    for (const group of this.groupList) {
      for (const p of group.params) {
        const g = grads.get(p.variable);
        if (!g) continue;
        const wd = p.decay ? group.weightDecay : 0;
        // PyTorch creates the buffer from the first (decayed) gradient, so it is made inside the same step.
        const existing = this.momentum !== 0 ? this.slotsOf(p)?.get('momentum_buffer') : undefined;
        tf.tidy(() => {
          let grad: tf.Tensor = g;
          if (wd !== 0) grad = tf.add(grad, tf.mul(p.variable, wd));
          if (this.momentum !== 0) {
            let buf: tf.Tensor;
            if (existing) {
              buf = tf.add(tf.mul(existing, this.momentum), tf.mul(grad, 1 - this.dampening));
              existing.assign(buf);
            } else {
              // Variables are not freed by tf.tidy: the new buffer outlives this step.
              const first = grad;
              this.initSlots(p, () => tf.clone(first));
              buf = first;
            }
            grad = this.nesterov ? tf.add(grad, tf.mul(buf, this.momentum)) : buf;
          }
          p.variable.assign(tf.sub(p.variable, tf.mul(grad, group.lr)));
        });
      }
    }
  }
}
