export * from './run.js';
export * from './results.js';
export * from './model.js';
export * from './data.js';
export * from './retrieval.js';
export * from './pretrained.js';
