import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValueError } from '@clip-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_VARIANTS, runDemoAblation, type AblationReport } from '../src/index.js';
import { demoExperimentConfig, demoScoredCheckpoint, QUICK_DEMO } from '../src/support/demo-config.js';
import { deepMerge } from '../src/support/deep-merge.js';
import { captureIO } from './helpers/tiny-checkpoint.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-ablate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface DemoResultsFile {
  test: { loss: number };
  epochs: number;
  bestEpoch: number;
  demo: { zeroShot: Record<'heldOutAll' | 'heldOutOnly' | 'seen', { scores: Array<{ template: string; topK: Record<string, number> }> }> };
}
const bestTop1 = (scores: Array<{ topK: Record<string, number> }>) => Math.max(...scores.map((s) => s.topK['1'] as number));

describe('demo ablation harness (quick mode)', () => {
  it('runs the chosen variants in order and writes a table whose numbers are each run’s own', async () => {
    const out = join(dir, 'ablation');
    const only = ['first-caption-grouped', 'warmup-cosine', 'resnet-small-ema'];
    const report = await runDemoAblation({ quick: true, only, out, threads: 1 }, captureIO());

    expect(report.rows.map((r) => r.variant)).toEqual(only);
    const written = JSON.parse(await readFile(join(out, 'ablation.json'), 'utf8')) as AblationReport;
    expect(written.rows.map((r) => r.variant)).toEqual(only);
    expect(written.quick).toBe(true);

    for (const row of report.rows) {
      // Every number in the row is what that variant's own demo run wrote.
      const res = JSON.parse(await readFile(join(out, row.variant, 'results.json'), 'utf8')) as DemoResultsFile;
      expect(row.testLoss).toBe(res.test.loss);
      expect(row.epochs).toBe(res.epochs);
      expect(row.bestEpoch).toBe(res.bestEpoch);
      expect(row.heldOutTop1).toBe(bestTop1(res.demo.zeroShot.heldOutAll.scores));
      expect(row.heldOutOnlyTop1).toBe(bestTop1(res.demo.zeroShot.heldOutOnly.scores));
      expect(row.seenTop1).toBe(bestTop1(res.demo.zeroShot.seen.scores));
      expect(res.demo.zeroShot.heldOutAll.scores.map((s) => s.template)).toContain(row.heldOutPrompt);
      expect(row.cpuSeconds).toBeGreaterThan(0);
      expect(row.wallSeconds).toBeGreaterThan(0);
    }

    // --threads reached every variant's run.
    for (const name of only) {
      expect((JSON.parse(await readFile(join(out, name, 'config.json'), 'utf8')) as { threads?: number }).threads).toBe(1);
    }

    // The variant's patch reached the experiment config the trainer ran.
    const cfg = JSON.parse(await readFile(join(out, 'first-caption-grouped', 'config.json'), 'utf8')) as { targets: string; data: { captionPick: string } };
    expect(cfg.targets).toBe('grouped');
    expect(cfg.data.captionPick).toBe('first');
    // The warmup is sized to the run: the quick run has 4 steps, so it warms up over 3 and still decays.
    const wc = JSON.parse(await readFile(join(out, 'warmup-cosine', 'config.json'), 'utf8')) as { schedule: { lr: { kind: string; warmupSteps: number } } };
    expect(wc.schedule.lr).toMatchObject({ kind: 'warmup-cosine', warmupSteps: 3 });

    // A vision-tower override replaces the ViT; EMA runs write the averaged checkpoint the demo scores.
    const rc = JSON.parse(await readFile(join(out, 'resnet-small-ema', 'config.json'), 'utf8')) as {
      model: { vision: { config: Record<string, unknown> } };
      training: { ema?: { decay: number } };
    };
    expect(rc.model.vision.config).toMatchObject({ model_type: 'resnet', hidden_sizes: [32, 64, 128], layer_type: 'basic' });
    expect(rc.model.vision.config).not.toHaveProperty('patch_size');
    expect(rc.training.ema?.decay).toBeGreaterThan(0);
    expect(existsSync(join(out, 'resnet-small-ema', 'best', 'ema', 'model.safetensors'))).toBe(true);

    const md = await readFile(join(out, 'ablation.md'), 'utf8');
    const lines = md.split('\n').filter((l) => l.startsWith('|'));
    expect(lines[0]).toMatch(/^\| variant +\| held-out top-1 of 30 .*\| seen top-1 of 30 .*\| test loss .*\| wall s .*\| CPU s/);
    expect(lines).toHaveLength(2 + only.length);
    for (const [i, row] of report.rows.entries()) {
      const cells = (lines[2 + i] as string).split('|').map((c) => c.trim());
      expect(cells[1]).toBe(row.variant);
      expect(cells[2]).toBe(`${(row.heldOutTop1 * 100).toFixed(2)}%`);
      expect(cells[5]).toBe(row.testLoss.toFixed(4));
    }
  });

  it('names an unknown variant and lists the known ones', async () => {
    const err = await runDemoAblation({ quick: true, only: ['baseline', 'no-such-variant'], out: join(dir, 'bad') }, captureIO()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValueError);
    expect(String(err)).toContain("'no-such-variant'");
    expect(String(err)).toContain('warmup-cosine');
  });

  it('has unique variant names and a baseline that changes nothing', () => {
    expect(new Set(DEMO_VARIANTS.map((v) => v.name)).size).toBe(DEMO_VARIANTS.length);
    expect(DEMO_VARIANTS.find((v) => v.name === 'baseline')?.patch).toEqual({});
  });
});

describe('deepMerge and the demo config patch', () => {
  it('merges objects key by key, replaces other values, removes keys set to undefined, copies instead of mutating', () => {
    const base = { a: { b: 1, c: [1, 2] }, d: 'x', e: { f: 1 } };
    const merged = deepMerge(base, { a: { c: [3] }, e: undefined });
    expect(merged).toEqual({ a: { b: 1, c: [3] }, d: 'x' });
    expect(base).toEqual({ a: { b: 1, c: [1, 2] }, d: 'x', e: { f: 1 } });
    expect(merged.a).not.toBe(base.a);
  });

  it('lays DemoSettings.config over the built experiment config', () => {
    const plain = demoExperimentConfig(QUICK_DEMO, 'runs/x', 'cpu');
    const patched = demoExperimentConfig(
      { ...QUICK_DEMO, config: { loss: 'siglip', optim: { weightDecay: 0.1 }, schedule: { lr: { kind: 'warmup-cosine', warmupSteps: 5 } } } },
      'runs/x',
      'cpu',
    );
    expect(patched.loss).toBe('siglip');
    expect(patched.optim).toEqual({ ...plain.optim, weightDecay: 0.1 });
    expect(patched.schedule).toEqual({ ...plain.schedule, lr: { kind: 'warmup-cosine', warmupSteps: 5 } });
    expect(patched.model).toEqual(plain.model);
  });

  it('replaces the ViT with DemoSettings.visionTower and leaves the rest of the model as it was', () => {
    const plain = demoExperimentConfig(QUICK_DEMO, 'runs/x', 'cpu');
    const tower = { model_type: 'resnet', embedding_size: 8, hidden_sizes: [8], depths: [1], layer_type: 'basic' };
    const patched = demoExperimentConfig({ ...QUICK_DEMO, visionTower: tower }, 'runs/x', 'cpu');
    expect(patched.model).toEqual({ ...plain.model, vision: { config: tower } });
    expect((plain.model as { vision: { config: { model_type: string } } }).vision.config.model_type).toBe('vit');
  });

  it('scores best/ema when the run keeps an EMA of the weights, else best/', () => {
    const plain = demoExperimentConfig(QUICK_DEMO, 'runs/x', 'cpu');
    expect(demoScoredCheckpoint(plain, 'runs/x')).toBe(join('runs/x', 'best'));
    const ema = demoExperimentConfig({ ...QUICK_DEMO, config: { training: { ema: { decay: 0.9 } } } }, 'runs/x', 'cpu');
    expect(demoScoredCheckpoint(ema, 'runs/x')).toBe(join('runs/x', 'best', 'ema'));
  });
});
