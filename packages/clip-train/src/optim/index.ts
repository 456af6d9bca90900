export * from './adam.js';
export * from './clip-grad.js';
export * from './param-groups.js';
