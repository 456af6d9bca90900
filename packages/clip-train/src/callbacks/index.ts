export * from './callback.js';
export * from './reduce-lr.js';
export * from './early-stopping.js';
export * from './model-checkpoint.js';
export * from './nan-guard.js';
export * from './history-logger.js';
export * from './progress.js';
export * from './loss-plot.js';
