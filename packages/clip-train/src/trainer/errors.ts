import { ClipError } from '@clip-ts/core';

/** Training cannot go on: a non-finite loss, a bad resume directory, an interrupted run. */
export class TrainingError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRAIN', message, options);
  }
}
