import { ClipError } from '@clip-ts/core';

/**
 * Error classes for the codes core reserves for this package ('TOKENIZER', 'HUB'). They live here rather
 * than in @clip-ts/core because only @clip-ts/encoders throws them; callers can still branch on `err.code`.
 */

/** tokenizer.json / tokenizer_config.json missing, unreadable, invalid JSON or unsupported. */
export class TokenizerError extends ClipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TOKENIZER', message, options);
  }
}

/** A pretrained model could not be resolved: a file is missing on the hub, offline mode, HTTP failure. */
export class HubError extends ClipError {
  /** Files that could not be obtained (repo-relative names). */
  readonly missing: readonly string[];
  constructor(message: string, missing: readonly string[] = [], options?: { cause?: unknown }) {
    super('HUB', message, options);
    this.missing = missing;
  }
}
