import type { NamedVariable } from '@clip-ts/core';
import type { ParamGroup } from './optimizer.js';

export const TOWER_PREFIXES = ['vision_model.', 'text_model.'] as const;

export interface GroupRates {
  /** Learning rate of the heads and the logit scale. */
  lr: number;
  /** Learning rate of the towers; defaults to `lr`. */
  towerLr?: number;
  weightDecay: number;
}

export function isTowerParam(name: string): boolean {
  return TOWER_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Split the weights being trained into PyTorch-style groups: `towers` (vision_model.*, text_model.*) and
 * `heads` (projections and logit_scale), each with its own learning rate. Weight decay skips what the
 * encoder marks `noDecay` (LayerNorms, biases) and the logit scale. Empty groups are kept so that group
 * names — and so optimizer state — do not depend on the freeze setting.
 */
export function buildParamGroups(trainable: readonly NamedVariable[], rates: GroupRates): ParamGroup[] {
  const towers: ParamGroup = { name: 'towers', params: [], lr: rates.towerLr ?? rates.lr, weightDecay: rates.weightDecay };
  const heads: ParamGroup = { name: 'heads', params: [], lr: rates.lr, weightDecay: rates.weightDecay };
  for (const nv of trainable) {
    const decay = !nv.noDecay && nv.name !== 'logit_scale';
    (isTowerParam(nv.name) ? towers : heads).params.push({ name: nv.name, variable: nv.variable, decay });
  }
  return [towers, heads];
}
