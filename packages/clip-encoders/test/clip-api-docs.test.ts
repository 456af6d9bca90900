/**
 * Runs the ```ts block of docs/pretrained.md as written, except for the declared substitutions below
 * (no Hub download here: the Hub id becomes the clip-tiny fixture, the image names its images). The block is
 * copied to `<repo>/.cache/docs/` (git-ignored; inside the repo so its bare imports resolve and vitest's
 * aliases apply) and imported.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it, vi } from 'vitest';
import { fixtureDir } from './helpers.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const outDir = join(repo, '.cache', 'docs');
const outFile = join(outDir, `pretrained-example-${process.pid}.ts`);

const SUBSTITUTIONS: ReadonlyArray<[string, string]> = [
  ["'openai/clip-vit-base-patch32'", JSON.stringify(fixtureDir('clip-tiny'))],
  ["'cat.jpg'", JSON.stringify(join(fixtureDir('clip-tiny'), 'image_0.png'))],
  ["'dog.jpg'", JSON.stringify(join(fixtureDir('clip-tiny'), 'image_1.png'))],
];

afterAll(async () => {
  await rm(outFile, { force: true });
});

it('docs/pretrained.md example runs', async () => {
  const md = await readFile(join(repo, 'docs', 'pretrained.md'), 'utf8');
  const blocks = [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  expect(blocks).toHaveLength(1);
  let code = blocks[0] as string;
  for (const [from, to] of SUBSTITUTIONS) {
    expect(code).toContain(from);
    code = code.replaceAll(from, to);
  }
  await mkdir(outDir, { recursive: true });
  await writeFile(outFile, code);
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    await import(/* @vite-ignore */ outFile);
    const lines = log.mock.calls.map((c) => c.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(' '));
    expect(lines[0]).toMatch(/^(cat|dog|car) 0\.\d+$/);
    expect(lines[1]).toBe('2/2');
    expect(lines[2]).toBe('2 16 2');
    expect(lines[3]).toMatch(/^\["(cat|dog)","(cat|dog)"\]$/);
    expect(lines[4]).toMatch(/^\[\[-?[\d.e-]+,-?[\d.e-]+\]\]$/);
    expect(lines[5]).toMatch(/^\[\{"index":[01],"score":-?[\d.e-]+\}\]$/);
    expect(lines).toHaveLength(6);
  } finally {
    log.mockRestore();
  }
});

it("README's three-line example is the start of docs/pretrained.md's (which runs above)", async () => {
  const block = async (file: string): Promise<string> => {
    const m = /```ts\n([\s\S]*?)```/.exec(await readFile(join(repo, file), 'utf8'));
    return m?.[1] ?? '';
  };
  const code = (text: string): string[] => text.split('\n').map((l) => l.replace(/\s*\/\/.*$/, '').trim()).filter((l) => l !== '');
  const readme = code(await block('README.md'));
  expect(readme).toHaveLength(3);
  expect(code(await block('docs/pretrained.md')).slice(0, 3)).toEqual(readme);
});
