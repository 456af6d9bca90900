import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamUpdate, type AdamCoefficients } from '@clip-ts/core';
import { GroupedOptimizer } from './grouped-optimizer.js';
import type { OptimizerState, ParamGroup } from './optimizer.js';

export type AdamKind = 'adam' | 'adamw';

export interface AdamOptions {
  /** 'adam': L2 decay added to the gradient (torch.optim.Adam); 'adamw': decoupled decay (torch.optim.AdamW). */
  kind: AdamKind;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /**
   * Update each parameter in place in one pass where the backend allows (wasm, cpu; `fusedAdamUpdate` in
   * @clip-ts/core), bit-identical to the tensor ops; false always runs the tensor ops. Default true.
   */
  fused?: boolean;
}

/** Adam's state: `exp_avg.<name>` / `exp_avg_sq.<name>` per parameter that has taken a step. */
export interface AdamState extends OptimizerState {
  kind: AdamKind;
}

/**
 * Adam / AdamW over named variables with parameter groups, PyTorch semantics (bias-corrected moments,
 * eps added to the bias-corrected sqrt(v), AdamW's decay `p *= 1 - lr·wd` before the Adam update). Written
 * here because tfjs's AdamOptimizer has no param groups, no decoupled decay and no inspectable state.
 * Moments are created lazily on a parameter's first update, as PyTorch does.
 */
export class AdamOptimizer extends GroupedOptimizer {
  readonly kind: AdamKind;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly fused: boolean;

  constructor(groups: ParamGroup[], options: AdamOptions) {
    super(groups, ['exp_avg', 'exp_avg_sq']);
    this.kind = options.kind;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.fused = options.fused ?? true;
  }

  override applyGradients(grads: ReadonlyMap<tf.Variable, tf.Tensor>): void {
    this.stepCount += 1;
    for (const group of this.groupList) {
      for (const p of group.params) {
        const g = grads.get(p.variable);
        if (!g) continue;
        const slot = this.slotsOf(p) ?? this.initSlots(p, () => tf.zerosLike(p.variable));
        const slotM = slot.get('exp_avg') as tf.Variable;
        const slotV = slot.get('exp_avg_sq') as tf.Variable;
        const c = this.coefficients(group, p.decay);
        // The tensor path below holds 13–15 weight-sized intermediates at once (measured: micro-batch-auto.ts,
        // UPDATE_TENSORS); the fused update one (the weight's new storage). It refuses (false) a weight or
        // moment whose storage another tensor shares, e.g. an EMA shadow made from the weight: the tensor path
        // then gives the variable new storage and the sharer keeps its values.
        if (this.fused && fusedAdamUpdate({ param: p.variable, grad: g, m: slotM, v: slotV }, c)) continue;
        tf.tidy(() => {
          let grad: tf.Tensor = g;
          if (c.l2 !== 0) grad = tf.add(grad, tf.mul(p.variable, c.l2));
          const m = tf.add(tf.mul(slotM, c.beta1), tf.mul(grad, c.oneMinusBeta1));
          const v = tf.add(tf.mul(slotV, c.beta2), tf.mul(tf.square(grad), c.oneMinusBeta2));
          const denom = tf.add(tf.div(tf.sqrt(v), c.bc2Sqrt), c.eps);
          let param: tf.Tensor = p.variable;
          if (c.decay !== 1) param = tf.mul(param, c.decay);
          param = tf.sub(param, tf.mul(tf.div(m, denom), c.stepSize));
          slotM.assign(m);
          slotV.assign(v);
          p.variable.assign(param);
        });
      }
    }
  }

  /** The update's coefficients for a parameter of `group` (with or without its weight decay) at the current step. */
  protected coefficients(group: ParamGroup, decay: boolean): AdamCoefficients {
    const t = this.stepCount;
    const wd = decay ? group.weightDecay : 0;
    return {
      beta1: this.beta1,
      oneMinusBeta1: 1 - this.beta1,
      beta2: this.beta2,
      oneMinusBeta2: 1 - this.beta2,
      bc2Sqrt: Math.sqrt(1 - this.beta2 ** t),
      eps: this.eps,
      stepSize: group.lr / (1 - this.beta1 ** t),
      l2: this.kind === 'adam' ? wd : 0,
      decay: this.kind === 'adamw' && wd !== 0 ? 1 - group.lr * wd : 1,
    };
  }

  override getState(): AdamState {
    return { ...super.getState(), kind: this.kind };
  }
}
