/**
 * Every error this library throws on bad input is a `ClipError` with a stable `code`, so callers can
 * branch on `err.code` instead of parsing messages. Messages name the file / key / line at fault.
 */
export type ClipErrorCode =
  | 'SAFETENSORS'
  | 'CONFIG'
  | 'CHECKPOINT'
  | 'BACKEND'
  | 'SHAPE'
  | 'VALUE'
  | 'DATA'
  | 'TOKENIZER'
  | 'HUB'
  | 'TRAIN'
  | 'WRITE'
  | 'MEMORY';

export class ClipError extends Error {
  readonly code: ClipErrorCode;
  constructor(code: ClipErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A safetensors file violates the format (header, offsets, dtypes, sizes). */
export class SafetensorsError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SAFETENSORS', message, options);
  }
}

/** A configuration (JSON/YAML/object) failed validation. */
export class ConfigError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
  }
}

/** A checkpoint directory is missing files, has incompatible weights, or cannot be written. */
export class CheckpointError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT', message, options);
  }
}

/** A requested tfjs backend is not installed or failed to initialise. */
export class BackendError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND', message, options);
  }
}

/**
 * A thread of the batched-GEMM pool (wasm backend, Node) failed, died or did not finish in time. The product
 * that met it throws this; later products run on the calling thread.
 */
export class GemmWorkerError extends BackendError {}

/** A tensor has the wrong rank, shape or dtype for the operation. */
export class ShapeError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SHAPE', message, options);
  }
}

/** An argument has an invalid value (empty list, NaN, out of range, bad template...). */
export class ValueError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('VALUE', message, options);
  }
}

/** A dataset on disk is malformed (bad line, missing image, corrupt file...). */
export class DataError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATA', message, options);
  }
}

/** Format zod issues as `path: message` lines, so every error names where it is. */
export function formatZodIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string {
  return issues
    .map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`)
    .join('\n');
}

/** A file could not be written (disk full, permissions, I/O error); names the file, keeps the OS error as cause. */
export class WriteError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WRITE', message, options);
  }
}

/**
 * The backend ran out of memory for a tensor (the wasm heap is at most 4 GB). Thrown where the allocation
 * failed, with its size and the heap's, so the caller can lower the batch or micro-batch and try again.
 */
export class OutOfMemoryError extends ClipError {
  readonly requestedBytes: number;
  constructor(message: string, requestedBytes: number, options?: { cause?: unknown }) {
    super('MEMORY', message, options);
    this.requestedBytes = requestedBytes;
  }
}
