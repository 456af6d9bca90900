import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli } from '../src/cli.js';
import type { Results } from '@clip-ts/train';
import { captureIO } from './helpers/tiny-checkpoint.js';
// train's test fixtures: the tiny experiment config its own runExperiment tests use.
import { tinyConfig } from '../../clip-train/test/helpers/tiny-config.js';
import { useTmpDirs } from '../../clip-train/test/helpers/tmp-dirs.js';

const tmpDir = useTmpDirs('clip-cli-train-');

describe('clip train', () => {
  it('trains from a YAML config with --set overrides, prints the results table, and resumes with --resume', async () => {
    const dir = await tmpDir();
    const runDir = path.join(dir, 'run');
    const file = path.join(dir, 'exp.yaml');
    await fs.writeFile(file, stringify(tinyConfig(path.join(dir, 'unused'))));
    const io = captureIO();
    const code = await runCli(['train', '--config', file, '--set', `output.runDir=${runDir}`, '--set', 'schedule.epochs=1'], io);
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    expect(io.out()).toMatch(/^\| Metric +\| Value +\|/);
    expect(io.out()).toMatch(/Text→image Recall@5/);
    expect(io.err()).toMatch(/epoch 1\/1/);
    // Resume the finished 1-epoch run to 2 epochs, as JSON, on 2 data-parallel replicas.
    const io2 = captureIO();
    expect(await runCli(['train', '--resume', runDir, '--set', 'schedule.epochs=2', '--workers', '2', '--json'], io2)).toBe(0);
    const r = JSON.parse(io2.out()) as Results;
    expect(r.epochs).toBe(2);
    expect(r.history).toHaveLength(2);
    expect(io2.err()).toMatch(/resumed from .* at epoch 2/);
    expect(io2.err()).toMatch(/data-parallel: 2 replicas/);
  });

  it('an invalid config exits 2 and lists every bad key with its path', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'bad.json');
    await fs.writeFile(file, JSON.stringify({ ...tinyConfig(dir), optim: { lr: 'fast' }, colour: 'red' }));
    const io = captureIO();
    expect(await runCli(['train', '--config', file, '--set', 'schedule.epochs=0', '--workers', 'all'], io)).toBe(2);
    expect(io.err()).toContain('bad.json');
    expect(io.err()).toMatch(/optim\.lr: /);
    expect(io.err()).toMatch(/schedule\.epochs: /);
    expect(io.err()).toMatch(/training\.workers: /);
    expect(io.err()).toMatch(/Unrecognized key.*colour/);
    const io2 = captureIO();
    expect(await runCli(['train'], io2)).toBe(2);
    expect(io2.err()).toMatch(/needs --config/);
    const io3 = captureIO();
    expect(await runCli(['train', '--resume', dir], io3)).toBe(2); // no config.json / no checkpoint there
  });
});
