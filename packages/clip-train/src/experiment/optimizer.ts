import type { NamedVariable } from '@clip-ts/core';
import type { ExperimentConfig } from '../config/schema.js';
import { AdamOptimizer } from '../optim/adam.js';
import { HostAdamOptimizer } from '../optim/host-adam.js';
import type { Optimizer } from '../optim/optimizer.js';
import { buildParamGroups } from '../optim/param-groups.js';
import { SGDOptimizer } from '../optim/sgd.js';

/**
 * The optimizer `optim.name` selects, over the trainable weights in heads / towers groups. Caller disposes it.
 * `stateOnHost`: where the run's memory plan put Adam's moments (resolveMicroBatch), else optim.stateOnHost.
 */
export function buildOptimizer(optim: ExperimentConfig['optim'], trainable: NamedVariable[], stateOnHost = optim.stateOnHost === true): Optimizer {
  const groups = buildParamGroups(trainable, { lr: optim.lr, towerLr: optim.towerLr, weightDecay: optim.weightDecay });
  if (optim.name === 'sgd') return new SGDOptimizer(groups, { momentum: optim.momentum, dampening: optim.dampening, nesterov: optim.nesterov });
  const options = { kind: optim.name, beta1: optim.beta1, beta2: optim.beta2, eps: optim.eps };
  return stateOnHost ? new HostAdamOptimizer(groups, options) : new AdamOptimizer(groups, options);
}
