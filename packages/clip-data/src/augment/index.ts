export { AugmentOptionsSchema, factorRange } from './options.js';
export type { AugmentOptions, ResolvedAugmentOptions } from './options.js';
export { Augmenter } from './augmenter.js';
export type { SampleAugmentation } from './augmenter.js';
export { AugmentingProcessor } from './processor.js';
export { randomResizedCropBox, roundHalfEven } from './crop-box.js';
export type { CropBox, CropDraws } from './crop-box.js';
export { resizedCrop } from './resized-crop.js';
export { adjustBrightness, adjustContrast, adjustSaturation, hflip } from './colour.js';
