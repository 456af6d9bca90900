import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BackendError, initBackend, parseBackendName, type BackendName } from '@clip-ts/core';

export interface ExampleIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIO: ExampleIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/**
 * The reference experiments ran on a CUDA GPU. Try the backend asked for (default tensorflow-gpu); when it
 * cannot start, say why and what to install, and fall back to the fastest available one. Returns the
 * backend name to put in the experiment config.
 */
export async function chooseBackend(requested: BackendName, io: ExampleIO, dryRun: boolean): Promise<BackendName> {
  try {
    const info = await initBackend(requested);
    io.stderr(`backend: ${info.name}\n`);
    // initBackend reports browser names too; under Node it only ever starts these.
    return parseBackendName(info.name);
  } catch (err) {
    if (!(err instanceof BackendError) || requested === 'auto') throw err;
    const fallback = await initBackend('auto');
    io.stderr(
      `warning: backend '${requested}' is not available: ${err.message}\n` +
        `warning: falling back to '${fallback.name}'.` +
        (dryRun ? '\n' : ' A full reproduction on CPU takes days; run it on a machine with a CUDA GPU and @tensorflow/tfjs-node-gpu installed.\n'),
    );
    return parseBackendName(fallback.name);
  }
}

/** True when this module is the script node was started with (so `main` runs), false when imported. */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

/** Run `main` as a script: exit code from its result, errors printed without a stack for ClipErrors. */
export function runAsScript(main: (argv: string[], io: ExampleIO) => Promise<number>): void {
  main(process.argv.slice(2), processIO).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const e = err as Error & { code?: string };
      process.stderr.write(`error: ${typeof e.code === 'string' && e.code === e.code.toUpperCase() ? e.message : (e.stack ?? e.message)}\n`);
      process.exitCode = 1;
    },
  );
}
