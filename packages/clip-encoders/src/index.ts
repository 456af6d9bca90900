// Browser-safe: nothing here imports a `node:` module or sharp (clip-core's browser-bundle test checks).
// Files, directories, the Hub cache and image decoding are in ./node.ts (`@clip-ts/encoders/node`).
export {};
// Towers (importing this package registers model_type vit / resnet / distilbert with the core registry).
export * from './vit.js';
export * from './resnet.js';
export * from './distilbert.js';
// HF CLIP towers (model_type clip_vision_model / clip_text_model) and loading an HF CLIPModel repo.
export * from './clip-vision.js';
export * from './clip-text.js';
export * from './clip-hf.js';
export * from './clip-hf-save.js';
export * from './clip-tokenizer.js';
export { vitWeightSpec, resnetWeightSpec, distilBertWeightSpec } from './tower-sizes.js';
export * from './attention.js';
export * from './hf-load.js';
export { normalInit, truncNormalInit } from './init.js';
export type { TowerOptions, ActivationName } from './layers.js';
// Preprocessing (encoders-io).
export * from './errors.js';
export * from './tokenizer.js';
export * from './image-processor.js';
export { resizeRgb8, resizeRgb8Into, resizeRgb8Scalar, ResizeScratch, type ResampleFilter } from './resample.js';
export * from './registry.js';
// The one object for inference: CLIP.fromPretrained(Hub id | dir | URL) (docs/pretrained.md).
export * from './clip-api.js';
export { type BatchEncoder, type BatchOptions, type CLIPImage, type RgbPixels } from './clip-images.js';
export * from './embeddings.js';
export * from './clip-checkpoint.js';
export { urlFiles, type UrlFilesOptions } from './clip-url-files.js';
export type { CLIPImageProcessor } from './platform/types.js';
// Browser image decoding (File/Blob/HTMLImageElement/ImageBitmap/ImageData → RGB), browser-safe.
export * from './platform/browser-images.js';
export { PatchDropout } from './patch-dropout.js';
export { checkpointBlock, type BlockFn, type GeneratorState } from './checkpoint.js';
