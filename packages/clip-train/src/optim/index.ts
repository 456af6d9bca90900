export * from './optimizer.js';
export * from './grouped-optimizer.js';
export * from './adam.js';
export * from './sgd.js';
export * from './clip-grad.js';
export * from './param-groups.js';
export * from './host-adam.js';
