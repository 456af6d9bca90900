export {};
// Towers (importing this package registers model_type vit / distilbert with the core registry).
export * from './vit.js';
export * from './distilbert.js';
export { vitWeightSpec, distilBertWeightSpec } from './tower-sizes.js';
export * from './attention.js';
export * from './hf-load.js';
export { normalInit, truncNormalInit } from './init.js';
export type { TowerOptions, ActivationName } from './layers.js';
// Preprocessing (encoders-io).
export * from './errors.js';
export * from './tokenizer.js';
export * from './image-processor.js';
export { resizeRgb8, type ResampleFilter } from './resample.js';
export * from './hub.js';
export * from './pretrained.js';
export * from './registry.js';
