/**
 * Runs the ```ts block of docs/data.md as written (with the vendored bert-base-uncased tokenizer), so the
 * documentation cannot drift from the API. Same mechanism as examples/test/docs-core-example.test.ts:
 * the block is copied to `<repo>/.cache/docs/` (git-ignored; vitest's aliases apply) and imported.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it, vi } from 'vitest';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const outDir = join(repo, '.cache', 'docs');
const outFile = join(outDir, `data-example-${process.pid}.ts`);

afterAll(async () => {
  await rm(outFile, { force: true });
  delete process.env.TOKENIZER_DIR;
});

it('docs/data.md example runs', async () => {
  const md = await readFile(join(repo, 'docs', 'data.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(md)?.[1];
  expect(block).toBeDefined();
  await mkdir(outDir, { recursive: true });
  await writeFile(outFile, block as string);
  process.env.TOKENIZER_DIR = join(repo, 'packages', 'clip-encoders', 'test', 'fixtures', 'tokenizer');
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    await import(/* @vite-ignore */ outFile);
    const lines = log.mock.calls.map((c) => c.map(String).join(' '));
    expect(lines[0]).toMatch(/^train: 64 images, 320 captions, p90 \d+(\.\d+)? tokens$/);
    expect(lines[1]).toBe('pixelValues 16x3x32x32, inputIds 16x40');
    expect(lines[2]).toBe('batches per epoch: 4');
    expect(lines[3]).toMatch(/^zero-shot batch 12x3x32x32: (red square|green star|blue circle|yellow triangle|purple cross|orange square)(, (red square|green star|blue circle|yellow triangle|purple cross|orange square)){11}$/);
    expect(lines[4]).toBe('tensors left: 0');
  } finally {
    log.mockRestore();
  }
});
