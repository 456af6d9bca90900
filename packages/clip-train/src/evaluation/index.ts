export * from './split.js';
export * from './captions.js';
