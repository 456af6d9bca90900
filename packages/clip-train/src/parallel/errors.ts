import { ClipError } from '@clip-ts/core';

/** A replica of data-parallel training failed, timed out or could not start; names the replica and step. */
export class ParallelError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRAIN', message, options);
  }
}
