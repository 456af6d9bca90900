import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests that run built code resolve `@clip-ts/*` from here, through node_modules). */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Tests that run the built dist (a browser bundle, a child `node` process) would otherwise check stale code:
 * rebuild each package whose src is newer than its dist, in the order given (dependencies first).
 */
export function ensureBuilt(packages: readonly string[]): void {
  for (const pkg of packages) {
    const dir = join(ROOT, 'packages', pkg);
    let built = 0;
    try {
      built = statSync(join(dir, 'dist', 'index.js')).mtimeMs;
    } catch {
      // not built yet
    }
    if (built < newestMtime(join(dir, 'src'))) {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.build.json')], { stdio: 'pipe' });
    }
  }
}
