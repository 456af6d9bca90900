/**
 * Contracts between preprocessing (implemented in @clip-ts/encoders) and datasets/loaders
 * (@clip-ts/data), so data does not depend on encoders. Plain typed arrays, no tensors: loaders decide
 * when to build tensors.
 */

/** Token ids for a batch, row-major [batchSize, seqLength], padded/truncated to seqLength. */
export interface EncodedText {
  inputIds: Int32Array;
  attentionMask: Int32Array;
  batchSize: number;
  seqLength: number;
}

export interface CaptionTokenizer {
  /** Tokenise with special tokens, truncate and pad to exactly maxLength. */
  encode(texts: readonly string[], maxLength: number): EncodedText;
  /** Token count of each text with special tokens and without truncation (for length statistics). */
  tokenLengths(texts: readonly string[]): number[];
  /** Size of the vocabulary (ids are < vocabSize). */
  readonly vocabSize: number;
  /** Stable description (vocab hash, options) for cache keys. */
  fingerprint(): string;
}

/** Decoded pixels at their stored size: interleaved RGB uint8, row-major. */
export interface DecodedRgb {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface ImageProcessor {
  /** Output size; every method returns float32 CHW of length 3 * height * width. */
  readonly height: number;
  readonly width: number;
  /** Decode a file (JPEG/PNG/WebP; gray and alpha → RGB), resize, normalise. Errors name the file. */
  processFile(path: string): Promise<Float32Array>;
  /** Same as processFile for encoded bytes; `source` names them in errors. */
  processBuffer(bytes: Uint8Array, source: string): Promise<Float32Array>;
  /** Raw interleaved uint8 pixels (HWC, e.g. CIFAR records or rendered images) → resized, normalised CHW. */
  processRaw(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, source: string): Promise<Float32Array>;
  /** Stable description of the preprocessing (size, mean, std, resample) for cache keys. */
  fingerprint(): string;
  /**
   * Optional: decode a file / bytes to RGB without resizing (alpha handled as in processFile). Training
   * augmentation (@clip-ts/data) needs it: a random crop is cut from the full-size image.
   */
  decodeFile?(path: string): Promise<DecodedRgb>;
  decodeBuffer?(bytes: Uint8Array, source: string): Promise<DecodedRgb>;
  /**
   * Optional: processFile of every path into ONE float32 buffer [paths.length, 3, height, width] (into
   * `options.out` when given, else a new array the caller owns), e.g. on worker threads. Same values as
   * processFile; the first bad file rejects the whole batch. Loaders use it for whole batches of files.
   */
  processFiles?(paths: readonly string[], options?: { out?: Float32Array }): Promise<Float32Array>;
}
