import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ParallelError } from './errors.js';

/**
 * A compiled worker script of this folder (`worker.js`, `embed-worker.js`). Under the library's dist/ it
 * sits next to this module; when this module runs from src/ (vitest), worker threads cannot load
 * TypeScript, so the built copy in dist/ is used (npm run build).
 */
export function workerUrl(file: string): URL {
  const here = new URL(`./${file}`, import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL(`../../dist/parallel/${file}`, import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new ParallelError(`the worker script is missing (${fileURLToPath(built)}): run npm run build`);
}
