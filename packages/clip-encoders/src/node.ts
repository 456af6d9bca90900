// `@clip-ts/encoders/node`: the Node-only half of @clip-ts/encoders (files, directories, the Hub cache,
// sharp decoding). Importing it also registers the towers, like the main entry.
export * from './hf-load-dir.js';
export * from './tokenizer-files.js';
export * from './image-decode.js';
export * from './hub.js';
export * from './pretrained.js';
export * from './clip-hf-dir.js';
export * from './clip-hf-save-dir.js';
export * from './clip-tokenizer-files.js';
export { exists, readJson, readShardIndex, ShardIndexSchema, type ShardIndex, type ErrorFactory, type ReadJsonOptions, type JsonFile } from './files.js';
export { TurboJpegDecoder, hasTurboJpeg, plainJpegSize } from './jpeg-turbo.js';
