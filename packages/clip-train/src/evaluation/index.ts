export * from './split.js';
export * from './captions.js';
export * from './zero-shot.js';
export * from './logistic.js';
export * from './probe.js';
export * from './probe-plot.js';
