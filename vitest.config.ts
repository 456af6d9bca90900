import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const pkg = (name: string, entry = 'index'): string => fileURLToPath(new URL(`./packages/${name}/src/${entry}.ts`, import.meta.url));

// Tests import sibling packages from source, so `vitest` works without a build. A subpath comes before its
// package: aliases match by prefix, first match wins.
const alias = {
  '@clip-ts/core': pkg('clip-core'),
  '@clip-ts/encoders': pkg('clip-encoders'),
  '@clip-ts/data': pkg('clip-data'),
  '@clip-ts/train/format': pkg('clip-train', 'format/index'),
  '@clip-ts/train': pkg('clip-train'),
  '@clip-ts/cli': pkg('clip-cli'),
};

const project = (name: string, extra: { include?: string[]; testTimeout?: number } = {}) => ({
  resolve: { alias },
  test: {
    name,
    root: fileURLToPath(new URL(`./packages/clip-${name}`, import.meta.url)),
    include: extra.include ?? ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: extra.testTimeout ?? 60_000,
    hookTimeout: 60_000,
    pool: 'forks' as const,
  },
});

export default defineConfig({
  test: {
    projects: [
      project('core'),
      project('encoders'),
      project('data'),
      project('train', { testTimeout: 300_000 }),
      project('cli', { testTimeout: 300_000 }),
      {
        resolve: { alias },
        test: {
          name: 'examples',
          root: fileURLToPath(new URL('./examples', import.meta.url)),
          include: ['test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 300_000,
          pool: 'forks' as const,
        },
      },
    ],
  },
});
