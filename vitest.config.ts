import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (name: string, file: string): string => fileURLToPath(new URL(`./packages/${name}/src/${file}`, import.meta.url));

// Tests import sibling packages from source, so `vitest` works without a build. Subpaths come first: an alias
// also matches `<key>/…`, so `@clip-ts/core` would swallow `@clip-ts/core/node`. Tests run under Node, so
// core's `#platform` and encoders' `#clip-platform` are their Node modules.
const alias = [
  { find: '@clip-ts/core/node', replacement: src('clip-core', 'node.ts') },
  { find: '@clip-ts/encoders/node', replacement: src('clip-encoders', 'node.ts') },
  { find: '@clip-ts/train/format', replacement: src('clip-train', 'format/index.ts') },
  { find: '@clip-ts/core', replacement: src('clip-core', 'index.ts') },
  { find: '@clip-ts/encoders', replacement: src('clip-encoders', 'index.ts') },
  { find: '@clip-ts/data', replacement: src('clip-data', 'index.ts') },
  { find: '@clip-ts/train', replacement: src('clip-train', 'index.ts') },
  { find: '@clip-ts/cli', replacement: src('clip-cli', 'index.ts') },
  { find: '#platform', replacement: src('clip-core', 'platform/node.ts') },
  { find: '#clip-platform', replacement: src('clip-encoders', 'platform/node.ts') },
];

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
      {
        // examples/web: the page in a real Chromium (playwright-core + /usr/bin/chromium, see docs/browser.md).
        resolve: { alias },
        test: {
          name: 'web',
          root: fileURLToPath(new URL('./examples/web', import.meta.url)),
          include: ['test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 240_000,
          pool: 'forks' as const,
        },
      },
    ],
  },
});
