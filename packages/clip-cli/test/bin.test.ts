import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const pkgDir = fileURLToPath(new URL('../', import.meta.url));

it('the clip bin is a committed, executable file (npm links it at install time, before any build)', () => {
  const pkg = JSON.parse(readFileSync(`${pkgDir}package.json`, 'utf8')) as { bin: Record<string, string>; files: string[] };
  const rel = pkg.bin.clip ?? '';
  expect(rel.startsWith('./bin/')).toBe(true);
  const bin = `${pkgDir}${rel}`;
  expect(pkg.files).toContain('bin');
  expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  expect(() => accessSync(bin, constants.X_OK)).not.toThrow();
});

// `npm test` builds before running tests; the check needs dist/ and is meaningless without it.
it.runIf(existsSync(`${pkgDir}dist/cli.js`))('runs `clip --help` and returns the exit code of a bad command', async () => {
  const run = promisify(execFile);
  const help = await run(process.execPath, [`${pkgDir}bin/clip.js`, '--help']);
  expect(help.stdout).toMatch(/Usage: clip/);
  expect(help.stdout).toMatch(/demo/);
  await expect(run(process.execPath, [`${pkgDir}bin/clip.js`, 'train', '--config', '/nonexistent/run.yaml'])).rejects.toMatchObject({ code: 2 });
});
