/**
 * Runs the ```ts block of docs/core.md as written, so the documentation cannot drift from the API.
 * The block is copied to `<repo>/.cache/docs/` (git-ignored; inside the repo so its bare imports resolve
 * and vitest's aliases apply) and imported.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it, vi } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const outDir = join(repo, '.cache', 'docs');
const outFile = join(outDir, `core-example-${process.pid}.ts`);

afterAll(async () => {
  await rm(outFile, { force: true });
});

it('docs/core.md example runs', async () => {
  const md = await readFile(join(repo, 'docs', 'core.md'), 'utf8');
  const blocks = [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  expect(blocks).toHaveLength(1);
  await mkdir(outDir, { recursive: true });
  await writeFile(outFile, blocks[0] as string);
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    await import(/* @vite-ignore */ outFile);
    const lines = log.mock.calls.map((c) => c.map(String).join(' '));
    expect(lines[0]).toMatch(/^backend: /);
    expect(lines[1]).toMatch(/^loss \d+\.\d{4}$/);
    expect(lines[2]).toMatch(/^image 0: (cat|dog|car),(cat|dog|car) [\d.e-]+,[\d.e-]+$/);
  } finally {
    log.mockRestore();
  }
});
