/**
 * The encoder registry lives in @clip-ts/core (so CLIPModel.load can rebuild towers without depending on
 * this package); it is re-exported here so users adding a tower need one import. Importing
 * @clip-ts/encoders registers `vit` and `distilbert`. See docs/extending.md.
 */
export {
  registerImageEncoder,
  registerTextEncoder,
  createImageEncoder,
  createTextEncoder,
  registeredEncoders,
} from '@clip-ts/core';
export type {
  Encoder,
  ImageEncoder,
  TextEncoder,
  ImageEncoderFactory,
  TextEncoderFactory,
  EncoderConfig,
  EncoderFactoryOptions,
  NamedVariable,
  TensorData,
  ImageInput,
  TextInput,
} from '@clip-ts/core';
