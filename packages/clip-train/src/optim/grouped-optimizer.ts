import * as tf from '@tensorflow/tfjs-core';
import { ValueError } from '@clip-ts/core';
import { checkRate } from './check-rate.js';
import type { GroupState, OptimParam, Optimizer, OptimizerState, ParamGroup } from './optimizer.js';

/**
 * The bookkeeping every PyTorch-style optimizer shares: parameter groups with their own learning rate and
 * weight decay, a step counter, and per-parameter state tensors ("slots", e.g. Adam's `exp_avg`) created
 * lazily on a parameter's first update, saved as `<slot>.<param name>`. Subclasses write applyGradients.
 */
export abstract class GroupedOptimizer implements Optimizer {
  abstract readonly kind: string;
  protected readonly groupList: ParamGroup[];
  protected stepCount = 0;
  /** param name → slot name → state variable. */
  private readonly slots = new Map<string, Map<string, tf.Variable>>();

  /** `slotNames`: every slot a parameter has once it has stepped (a saved parameter must have all of them). */
  protected constructor(
    groups: ParamGroup[],
    private readonly slotNames: readonly string[],
  ) {
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

  abstract applyGradients(grads: ReadonlyMap<tf.Variable, tf.Tensor>): void;

  /** Number of optimizer steps taken (PyTorch's per-parameter `step`, shared since all params step together). */
  get step(): number {
    return this.stepCount;
  }

  get groups(): ReadonlyArray<Readonly<ParamGroup>> {
    return this.groupList;
  }

  getLr(group?: string): number {
    if (group !== undefined) return this.group(group).lr;
    const rates = new Set(this.groupList.map((g) => g.lr));
    if (rates.size !== 1) {
      throw new ValueError(`optimizer: groups have different learning rates (${this.groupList.map((g) => `${g.name} ${g.lr}`).join(', ')}); name one`);
    }
    return [...rates][0] as number;
  }

  setLr(lr: number): void;
  setLr(group: string, lr: number): void;
  setLr(groupOrLr: string | number, lr?: number): void {
    if (typeof groupOrLr === 'number') {
      checkRate('lr', groupOrLr);
      for (const g of this.groupList) g.lr = groupOrLr;
      return;
    }
    const rate = lr ?? NaN;
    checkRate(`group '${groupOrLr}' lr`, rate);
    this.group(groupOrLr).lr = rate;
  }

  variables(): tf.Variable[] {
    return this.groupList.flatMap((g) => g.params.map((p) => p.variable));
  }

  getState(): OptimizerState {
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, slots] of this.slots) {
      for (const slot of this.slotNames) {
        const v = slots.get(slot);
        if (v) tensors.set(`${slot}.${name}`, tf.clone(v));
      }
    }
    return {
      kind: this.kind,
      step: this.stepCount,
      groups: this.groupList.map((g) => ({ name: g.name, lr: g.lr, weightDecay: g.weightDecay })),
      tensors,
    };
  }

  setState(state: { step: number; groups: readonly GroupState[]; tensors: ReadonlyMap<string, tf.Tensor> }, source = 'optimizer state'): void {
    const names = state.groups.map((g) => g.name).join(',');
    const mine = this.groupList.map((g) => g.name).join(',');
    if (names !== mine) throw new ValueError(`${source}: parameter groups [${names}] do not match [${mine}]`);
    const byName = new Map(this.groupList.flatMap((g) => g.params.map((p) => [p.name, p] as const)));
    for (const key of state.tensors.keys()) {
      const slot = this.slotNames.find((s) => key.startsWith(`${s}.`));
      const p = slot === undefined ? undefined : byName.get(key.slice(slot.length + 1));
      if (!p) throw new ValueError(`${source}: '${key}' names no parameter this optimizer trains`);
      const shape = state.tensors.get(key)?.shape ?? [];
      if (shape.join('x') !== p.variable.shape.join('x')) {
        throw new ValueError(`${source}: '${key}' has shape [${shape}] but the parameter has [${p.variable.shape}]`);
      }
    }
    this.disposeSlots();
    for (const p of byName.values()) {
      const saved = this.slotNames.map((s) => state.tensors.get(`${s}.${p.name}`));
      if (saved.length === 0 || saved.some((t) => t === undefined)) continue;
      this.slots.set(p.name, new Map(this.slotNames.map((s, i) => [s, stateVariable(() => tf.cast(saved[i] as tf.Tensor, 'float32'))])));
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

  /**
   * The slots of `p`, or undefined before its first update. Subclasses create them with `initSlots`.
   */
  protected slotsOf(p: OptimParam): ReadonlyMap<string, tf.Variable> | undefined {
    return this.slots.get(p.name);
  }

  /** Create `p`'s slots, one per slot name, from `init(slot)` (whose temporaries are freed). */
  protected initSlots(p: OptimParam, init: (slot: string) => tf.Tensor): ReadonlyMap<string, tf.Variable> {
    const slots = new Map(this.slotNames.map((s) => [s, stateVariable(() => init(s))]));
    this.slots.set(p.name, slots);
    return slots;
  }

  private disposeSlots(): void {
    for (const slots of this.slots.values()) for (const v of slots.values()) v.dispose();
    this.slots.clear();
  }

  private group(name: string): ParamGroup {
    const g = this.groupList.find((x) => x.name === name);
    if (!g) throw new ValueError(`optimizer: no parameter group '${name}' (have ${this.groupList.map((x) => x.name).join(', ')})`);
    return g;
  }
}

/** A non-trainable variable initialised from `init`; the temporary the initial value lives in is freed. */
function stateVariable(init: () => tf.Tensor): tf.Variable {
  return tf.tidy(() => tf.variable(init(), false));
}
