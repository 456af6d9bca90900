import type { CliIO } from '../../src/cli.js';

// The tiny random checkpoint is train's test helper (it tests saveCheckpointAssets with it); one copy.
export { TINY_CLIP_CONFIG, writeTinyCheckpoint } from '../../../clip-train/test/helpers/tiny-checkpoint.js';

/** An in-memory CliIO that records what a command printed. */
export function captureIO(): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    out: () => out,
    err: () => err,
  };
}
