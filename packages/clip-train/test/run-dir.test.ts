import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointError } from '@clip-ts/core';
import { claimRunDir, removeStaleTemps, resetRunDir, RUN_MARKER_FILE, runExperiment } from '../src/experiment/index.js';
import { replaceDirAtomic, TrainingError } from '../src/trainer/index.js';
import { tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

const tmpDir = useTmpDirs('clip-rundir-');
const io = { stdout: () => {}, stderr: () => {} };

/** The pid of a process that has exited (it ran `node -e ''` to completion). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('run directories (issue 15, item 1)', () => {
  it("refuses a folder holding the user's own config.json / results.json / history.csv and changes nothing", async () => {
    const runDir = await tmpDir();
    const mine = { 'config.json': '{"mine":true}\n', 'results.json': '{"accuracy":0.9}\n', 'history.csv': 'epoch,loss\n1,0.5\n' };
    for (const [f, text] of Object.entries(mine)) await fs.writeFile(path.join(runDir, f), text);
    const err = await runExperiment(tinyConfig(runDir), { io }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingError);
    expect((err as Error).message).toContain(runDir);
    for (const f of Object.keys(mine)) expect((err as Error).message).toContain(f);
    for (const [f, text] of Object.entries(mine)) expect(await fs.readFile(path.join(runDir, f), 'utf8')).toBe(text);
    expect((await fs.readdir(runDir)).sort()).toEqual(Object.keys(mine).sort());
  });

  it("a marked run directory keeps the files its user added: a rerun (resetRunDir) removes only the tool's own", async () => {
    const runDir = path.join(await tmpDir(), 'run');
    await claimRunDir(runDir);
    for (const f of ['config.json', 'results.json', 'history.csv', 'notes.txt']) await fs.writeFile(path.join(runDir, f), 'x');
    await fs.mkdir(path.join(runDir, 'best'));
    await fs.mkdir(path.join(runDir, 'my-plots'));
    const kept = await resetRunDir(runDir);
    expect(kept.sort()).toEqual(['my-plots', 'notes.txt']);
    expect((await fs.readdir(runDir)).sort()).toEqual([RUN_MARKER_FILE, 'my-plots', 'notes.txt']);
    // ...and the next run may use it (it is still marked).
    await expect(claimRunDir(runDir)).resolves.toBeDefined();
  });

  it('resetRunDir refuses an unmarked, non-empty directory untouched; new and empty directories are claimed', async () => {
    const dir = await tmpDir();
    await fs.writeFile(path.join(dir, 'notes.txt'), 'keep me');
    await expect(resetRunDir(dir, { what: 'a demo run directory' })).rejects.toThrow(/is not a demo run directory.*notes\.txt/);
    await expect(claimRunDir(dir)).rejects.toThrow(TrainingError);
    expect(await fs.readdir(dir)).toEqual(['notes.txt']);
    const empty = await tmpDir();
    await claimRunDir(empty);
    expect(await fs.readdir(empty)).toEqual([RUN_MARKER_FILE]);
  });
});

describe('stale temp directories of dead processes (item 6)', () => {
  it('are removed on start; those of live processes stay', async () => {
    const runDir = await tmpDir();
    const dead = deadPid();
    const stale = [`.best.${dead}.0a1b2c3d.tmp`, `.last.${dead}.deadbeef.tmp`, `.history.csv.${dead}.0123456789ab.tmp`];
    const live = `.last.${process.pid}.cafe0001.tmp`;
    for (const d of stale.slice(0, 2)) {
      await fs.mkdir(path.join(runDir, d));
      await fs.writeFile(path.join(runDir, d, 'model.safetensors'), 'partial');
    }
    await fs.writeFile(path.join(runDir, stale[2] as string), 'partial');
    await fs.mkdir(path.join(runDir, live));
    expect((await removeStaleTemps(runDir)).sort()).toEqual([...stale].sort());
    expect(await fs.readdir(runDir)).toEqual([live]);
  });

  it('a directory holding only temps of a killed run counts as empty, and is cleaned when claimed', async () => {
    const runDir = await tmpDir();
    await fs.mkdir(path.join(runDir, `.best.${deadPid()}.0a1b2c3d.tmp`));
    const { removedTemps } = await claimRunDir(runDir);
    expect(removedTemps).toHaveLength(1);
    expect(await fs.readdir(runDir)).toEqual([RUN_MARKER_FILE]);
  });
});

describe('checkpoint writes fail with one typed error (item 5)', () => {
  // /dev/full answers every write with ENOSPC: the error a full disk gives, from the real fs calls.
  it.runIf(existsSync('/dev/full'))('disk full mid-checkpoint → CheckpointError naming the checkpoint and the cause; the old one stays intact', async () => {
    const runDir = await tmpDir();
    const last = path.join(runDir, 'last');
    await replaceDirAtomic(last, async (tmp) => fs.writeFile(path.join(tmp, 'model.safetensors'), 'old weights'));
    const err = await replaceDirAtomic(last, async (tmp) => {
      await fs.writeFile(path.join(tmp, 'model.safetensors'), 'new weights');
      await fs.writeFile('/dev/full', new Uint8Array(1 << 16)); // the optimizer state
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toContain(last);
    expect((err as Error).message).toMatch(/ENOSPC/);
    expect(await fs.readFile(path.join(last, 'model.safetensors'), 'utf8')).toBe('old weights');
    expect(await fs.readdir(runDir)).toEqual(['last']);
  });
});
