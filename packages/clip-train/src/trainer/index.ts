export * from './types.js';
export * from './errors.js';
export * from './trainer.js';
export * from './run-state.js';
export * from './rng-state.js';
