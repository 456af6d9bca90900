export * from './chunked-step.js';
export * from './clip-step.js';
export * from './micro-batch-auto.js';
export * from './micro-batch-config.js';
export * from './checkpointing.js';
