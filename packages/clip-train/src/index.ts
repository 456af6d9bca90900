// Training engine: optimizer, trainer loop, callbacks, feature cache, config, experiments. The `clip`
// command-line app built on it is @clip-ts/cli.
export * from './optim/index.js';
export * from './trainer/index.js';
export * from './step/index.js';
export * from './callbacks/index.js';
export * from './cache/index.js';
export * from './ema/index.js';
export * from './distill/index.js';
export * from './config/index.js';
export * from './experiment/index.js';
export * from './evaluation/index.js';
// A run's checkpoints stand alone: the engine writes the preprocessing next to the weights; CLIP.fromPretrained
// (@clip-ts/encoders) reads it back.
export { saveCheckpointAssets, DEFAULT_MAX_LENGTH } from './experiment/checkpoint-assets.js';
export type { CheckpointAssets } from './experiment/checkpoint-assets.js';
export * from './parallel/index.js';
