// Browser-safe: nothing here imports a `node:` module (test/browser-bundle.test.ts checks). Disk I/O is
// in ./node.ts (`@clip-ts/core/node`).
export * from './errors.js';
export * from './rng.js';
export * from './backend.js';
export { parseThreadCount, MAX_WASM_THREADS, DEFAULT_WASM_STARTUP_TIMEOUT_MS } from './wasm-threads.js';
export * from './encoder.js';
export * from './ops.js';
export * from './preprocess.js';
export * from './stats.js';
export { fusedAdamUpdate, adamUpdateArrays, addInPlace, fusedUpdatesSupported, type AdamCoefficients, type AdamTensors } from './kernels/fused-update.js';
export {
  SAFETENSORS_DTYPES,
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  parseSafetensors,
  serializeSafetensors,
  tensorToWritable,
  halfBitsToFloat,
  floatToHalfBits,
  floatToBf16Bits,
  type SafetensorsDtype,
  type SafetensorsFile,
  type SafetensorsHeader,
  type TensorInfo,
  type ReadOptions,
  type WritableTensor,
} from './safetensors.js';
export * from './loss.js';
export * from './siglip-loss.js';
export * from './distill-loss.js';
export * from './loss-targets.js';
export * from './state-dict.js';
export * from './projection-head.js';
export * from './clip-model.js';
export * from './metrics.js';
export * from './zero-shot.js';
export * from './size-guard.js';
export * from './url-files.js';
