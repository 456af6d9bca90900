export * from './errors.js';
export * from './rng.js';
export * from './backend.js';
export * from './encoder.js';
export * from './ops.js';
export { addKernelFill } from './kernels/index.js';
export * from './preprocess.js';
export * from './stats.js';
