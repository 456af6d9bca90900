export * from './run.js';
export * from './results.js';
export * from './model.js';
export * from './data.js';
export * from './optimizer.js';
export { fixedEpoch } from './pipeline.js';
export * from './run-dir.js';
