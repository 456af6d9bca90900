import * as tf from '@tensorflow/tfjs-core';
import { ValueError } from '@clip-ts/core';

/** One weight the optimizer updates, with the name it is saved under and whether weight decay applies. */
export interface OptimParam {
  name: string;
  variable: tf.Variable;
  /** False for LayerNorm weights, biases and the logit scale (PyTorch's usual no-decay set). */
  decay: boolean;
}

/** A parameter group: its own learning rate and weight decay, like a PyTorch param group. */
export interface ParamGroup {
  name: string;
  params: OptimParam[];
  lr: number;
  weightDecay: number;
}

export type AdamKind = 'adam' | 'adamw';

export interface AdamOptions {
  /** 'adam': L2 decay added to the gradient (torch.optim.Adam); 'adamw': decoupled decay (torch.optim.AdamW). */
  kind: AdamKind;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/**
 * Serialisable optimizer state. `tensors` holds `exp_avg.<name>` / `exp_avg_sq.<name>` per parameter
 * that has taken a step; whoever receives it from getState owns those tensors.
 */
export interface AdamState {
  kind: AdamKind;
  step: number;
  groups: Array<{ name: string; lr: number; weightDecay: number }>;
  tensors: Map<string, tf.Tensor>;
}

interface Slot {
  m: tf.Variable;
  v: tf.Variable;
}

/**
 * Adam / AdamW over named variables with parameter groups, PyTorch semantics (bias-corrected moments,
 * eps added to the bias-corrected sqrt(v), AdamW's decay `p *= 1 - lr·wd` before the Adam update). Written
 * here because tfjs's AdamOptimizer has no param groups, no decoupled decay and no inspectable state.
 * Moments are created lazily on a parameter's first update, as PyTorch does.
 */
export class AdamOptimizer {
  readonly kind: AdamKind;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private readonly groupList: ParamGroup[];
  private readonly slots = new Map<string, Slot>();
  private stepCount = 0;

  constructor(groups: ParamGroup[], options: AdamOptions) {
    this.kind = options.kind;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    const seen = new Set<string>();
    for (const g of groups) {
      checkRate(`group '${g.name}' lr`, g.lr);
      checkRate(`group '${g.name}' weightDecay`, g.weightDecay);
      for (const p of g.params) {
        if (seen.has(p.name)) throw new ValueError(`optimizer: parameter '${p.name}' is in more than one group`);
        seen.add(p.name);
      }
    }
    this.groupList = groups.map((g) => ({ ...g, params: [...g.params] }));
  }

  /** Number of optimizer steps taken (PyTorch's per-parameter `step`, shared since all params step together). */
  get step(): number {
    return this.stepCount;
  }

  get groups(): ReadonlyArray<Readonly<ParamGroup>> {
    return this.groupList;
  }

  getLr(group: string): number {
    return this.group(group).lr;
  }

  /** Change a group's learning rate (what schedulers do); takes effect at the next step. */
  setLr(group: string, lr: number): void {
    checkRate(`group '${group}' lr`, lr);
    this.group(group).lr = lr;
  }

  /** Every updated variable, in group order. */
  variables(): tf.Variable[] {
    return this.groupList.flatMap((g) => g.params.map((p) => p.variable));
  }

  /**
   * Apply one update from `grads` (keyed by the variable). A parameter without a gradient is skipped
   * (like `p.grad is None`). Does not dispose the gradients: the caller owns them. No data is read back.
   */
  applyGradients(grads: ReadonlyMap<tf.Variable, tf.Tensor>): void {
    this.stepCount += 1;
    const t = this.stepCount;
    const bc1 = 1 - this.beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - this.beta2 ** t);
    for (const group of this.groupList) {
      const stepSize = group.lr / bc1;
      for (const p of group.params) {
        const g = grads.get(p.variable);
        if (!g) continue;
        const slot = this.slot(p);
        const wd = p.decay ? group.weightDecay : 0;
        tf.tidy(() => {
          let grad: tf.Tensor = g;
          if (this.kind === 'adam' && wd !== 0) grad = tf.add(grad, tf.mul(p.variable, wd));
          const m = tf.add(tf.mul(slot.m, this.beta1), tf.mul(grad, 1 - this.beta1));
          const v = tf.add(tf.mul(slot.v, this.beta2), tf.mul(tf.square(grad), 1 - this.beta2));
          const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), this.eps);
          let param: tf.Tensor = p.variable;
          if (this.kind === 'adamw' && wd !== 0) param = tf.mul(param, 1 - group.lr * wd);
          param = tf.sub(param, tf.mul(tf.div(m, denom), stepSize));
          slot.m.assign(m);
          slot.v.assign(v);
          p.variable.assign(param);
        });
      }
    }
  }

  /** A snapshot of the state; the caller owns the returned tensors (copies). */
  getState(): AdamState {
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, slot] of this.slots) {
      tensors.set(`exp_avg.${name}`, tf.clone(slot.m));
      tensors.set(`exp_avg_sq.${name}`, tf.clone(slot.v));
    }
    return {
      kind: this.kind,
      step: this.stepCount,
      groups: this.groupList.map((g) => ({ name: g.name, lr: g.lr, weightDecay: g.weightDecay })),
      tensors,
    };
  }

  /**
   * Restore a state from getState (or from disk). Copies the tensors (the caller keeps ownership). Throws
   * ValueError if the groups, parameter names or shapes do not match this optimizer.
   */
  setState(state: { step: number; groups: AdamState['groups']; tensors: ReadonlyMap<string, tf.Tensor> }, source = 'optimizer state'): void {
    const names = state.groups.map((g) => g.name).join(',');
    const mine = this.groupList.map((g) => g.name).join(',');
    if (names !== mine) throw new ValueError(`${source}: parameter groups [${names}] do not match [${mine}]`);
    const byName = new Map(this.groupList.flatMap((g) => g.params.map((p) => [p.name, p] as const)));
    for (const key of state.tensors.keys()) {
      const name = key.replace(/^exp_avg(_sq)?\./, '');
      const p = byName.get(name);
      if (!p) throw new ValueError(`${source}: '${key}' names no parameter this optimizer trains`);
      const shape = state.tensors.get(key)?.shape ?? [];
      if (shape.join('x') !== p.variable.shape.join('x')) {
        throw new ValueError(`${source}: '${key}' has shape [${shape}] but the parameter has [${p.variable.shape}]`);
      }
    }
    this.disposeSlots();
    for (const p of byName.values()) {
      const m = state.tensors.get(`exp_avg.${p.name}`);
      const v = state.tensors.get(`exp_avg_sq.${p.name}`);
      if (!m || !v) continue;
      this.slots.set(p.name, { m: stateVariable(() => tf.cast(m, 'float32')), v: stateVariable(() => tf.cast(v, 'float32')) });
    }
    this.stepCount = state.step;
    state.groups.forEach((g, i) => {
      const group = this.groupList[i] as ParamGroup;
      group.lr = g.lr;
      group.weightDecay = g.weightDecay;
    });
  }

  dispose(): void {
    this.disposeSlots();
  }

  private disposeSlots(): void {
    for (const slot of this.slots.values()) {
      slot.m.dispose();
      slot.v.dispose();
    }
    this.slots.clear();
  }

  private slot(p: OptimParam): Slot {
    let slot = this.slots.get(p.name);
    if (!slot) {
      slot = { m: stateVariable(() => tf.zerosLike(p.variable)), v: stateVariable(() => tf.zerosLike(p.variable)) };
      this.slots.set(p.name, slot);
    }
    return slot;
  }

  private group(name: string): ParamGroup {
    const g = this.groupList.find((x) => x.name === name);
    if (!g) throw new ValueError(`optimizer: no parameter group '${name}' (have ${this.groupList.map((x) => x.name).join(', ')})`);
    return g;
  }
}

function checkRate(what: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new ValueError(`optimizer: ${what} must be a finite number ≥ 0, got ${value}`);
}

/** A non-trainable variable initialised from `init`; the temporary the initial value lives in is freed. */
function stateVariable(init: () => tf.Tensor): tf.Variable {
  return tf.tidy(() => tf.variable(init(), false));
}
