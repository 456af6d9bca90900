export * from './split.js';
export * from './captions.js';
export * from './zero-shot.js';
