import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import * as train from '../src/index.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

it('exports the engine (what a program that trains needs), not the CLI', () => {
  for (const name of ['Trainer', 'AdamOptimizer', 'runExperiment', 'formatResultsTable', 'saveCheckpointAssets', 'DEFAULT_MAX_LENGTH']) {
    expect(train).toHaveProperty(name);
  }
  for (const name of ['runCli', 'buildProgram', 'markdownTable', 'pct', 'DEMO_SHAPES', 'QUICK_DEMO', 'formatEval', 'runZeroshot', 'bundledTokenizerFile', 'loadCheckpoint']) {
    expect(train).not.toHaveProperty(name);
  }
});

// Dependencies flow (core, encoders, data) ← train ← cli: the engine never reaches up into the CLI.
it('imports nothing from @clip-ts/cli or the CLI parser', async () => {
  const files = (await readdir(SRC, { recursive: true })).filter((f) => f.endsWith('.ts'));
  expect(files.length).toBeGreaterThan(10);
  for (const f of files) {
    const text = await readFile(join(SRC, f), 'utf8');
    expect(text, f).not.toMatch(/from '(@clip-ts\/cli|commander)'/);
  }
});
