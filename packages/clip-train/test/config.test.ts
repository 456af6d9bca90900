import { readFileSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@clip-ts/core';
import { applyOverrides, experimentJsonSchema, loadExperimentConfig, parseExperimentConfig } from '../src/config/index.js';

const minimal = {
  model: { vision: { config: { model_type: 'vit' } }, text: { config: { model_type: 'distilbert' } } },
  data: { dataset: { kind: 'shapes' }, tokenizer: 'tok.json' },
};

describe('experiment config', () => {
  it('fills the reference defaults', () => {
    const c = parseExperimentConfig(minimal);
    expect(c.seed).toBe(42);
    expect(c.optim).toMatchObject({ name: 'adam', lr: 1e-4, accumulation: 1, weightDecay: 0 });
    expect(c.schedule).toMatchObject({ epochs: 30, reduceLROnPlateau: { factor: 0.5, patience: 2 }, earlyStopping: { patience: 5 } });
    expect(c.data).toMatchObject({ maxLength: 40, batchSize: 32, imageSize: 224, captionPick: 'random' });
    expect(c.model).toMatchObject({ projectionDim: 256, head: 'linear', freeze: 'none' });
    expect(c.eval).toEqual({ topK: [1, 5], recallK: [1, 5, 10] });
    expect(c.loss).toBe('clip');
    expect(c.targets).toBe('auto');
    expect(c.schedule).not.toHaveProperty('lr');
  });

  it('loss, targets and schedule.lr (issue 14): warmup-cosine turns ReduceLROnPlateau off and refuses it explicitly', () => {
    const c = parseExperimentConfig({ ...minimal, loss: 'siglip', targets: 'grouped', schedule: { lr: { kind: 'warmup-cosine', warmupSteps: 10, minLr: 1e-6 } } });
    expect(c.loss).toBe('siglip');
    expect(c.targets).toBe('grouped');
    expect(c.schedule).toMatchObject({ lr: { kind: 'warmup-cosine', warmupSteps: 10, minLr: 1e-6 }, reduceLROnPlateau: false, earlyStopping: { patience: 5 } });
    const both = () => parseExperimentConfig({ ...minimal, schedule: { lr: { kind: 'warmup-cosine', warmupSteps: 1 }, reduceLROnPlateau: { factor: 0.5 } } });
    expect(both).toThrow(ConfigError);
    expect(both).toThrow(/schedule\.reduceLROnPlateau: cannot be combined with schedule\.lr/);
    expect(() => parseExperimentConfig({ ...minimal, loss: 'infonce' })).toThrow(/loss/);
    expect(() => parseExperimentConfig({ ...minimal, targets: 'all' })).toThrow(/targets/);
    expect(() => parseExperimentConfig({ ...minimal, schedule: { lr: { kind: 'warmup-cosine' } } })).toThrow(/schedule\.lr\.warmupSteps/);
  });

  it('rejects unknown keys, wrong types and out-of-range values, naming every path', () => {
    const bad = { ...minimal, optim: { lr: -1, amsgrad: true }, schedule: { epochs: 'ten' }, model: { ...minimal.model, freeze: { vision: -2 } } };
    let err: unknown;
    try {
      parseExperimentConfig(bad, 'exp.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('exp.yaml');
    expect(msg).toMatch(/optim\.lr: /);
    expect(msg).toMatch(/optim: Unrecognized key.*amsgrad/);
    expect(msg).toMatch(/schedule\.epochs: /);
    expect(msg).toMatch(/model\.freeze/);
  });

  it('model.pretrained: a whole CLIP as the starting point, exclusive with the tower keys; then data.tokenizer/imageSize are optional', () => {
    const c = parseExperimentConfig({ model: { pretrained: 'openai/clip-vit-base-patch32', freeze: { vision: 'all' } }, data: { dataset: { kind: 'shapes' } } });
    expect(c.model).toEqual({ pretrained: 'openai/clip-vit-base-patch32', freeze: { vision: 'all', text: 'none' } });
    // Unset: they come from the pretrained repo.
    expect(c.data.tokenizer).toBeUndefined();
    expect(c.data.imageSize).toBeUndefined();
    for (const key of ['vision', 'projectionDim', 'head'] as const) {
      const extra = { vision: minimal.model.vision, projectionDim: 64, head: 'mlp' }[key];
      expect(() => parseExperimentConfig({ model: { pretrained: 'dir', [key]: extra }, data: minimal.data }, 'exp.yaml')).toThrow(
        new RegExp(`exp\\.yaml[\\s\\S]*model\\.${key}: cannot be combined with model\\.pretrained`),
      );
    }
    expect(() => parseExperimentConfig({ model: { vision: minimal.model.vision }, data: minimal.data })).toThrow(/model\.text: required \(or give model\.pretrained/);
    expect(() => parseExperimentConfig({ model: minimal.model, data: { dataset: { kind: 'shapes' } } })).toThrow(/data\.tokenizer: required.*unless model\.pretrained/);
  });

  it('--set overrides parse values as YAML and create intermediate objects', () => {
    const o = applyOverrides(minimal, ['optim.lr=3e-4', 'schedule.epochs=2', 'schedule.earlyStopping=false', 'eval.topK=[1, 3]', 'output.runDir=runs/x']);
    const c = parseExperimentConfig(o);
    expect(c.optim.lr).toBe(3e-4);
    expect(c.schedule.epochs).toBe(2);
    expect(c.schedule.earlyStopping).toBe(false);
    expect(c.eval.topK).toEqual([1, 3]);
    expect(c.output.runDir).toBe('runs/x');
    expect((minimal as Record<string, unknown>).optim).toBeUndefined(); // input untouched
    expect(() => applyOverrides(minimal, ['nokey'])).toThrow(ConfigError);
    expect(() => applyOverrides(minimal, ['data.tokenizer.x=1'])).toThrow(/'data\.tokenizer' is not an object/);
    expect(() => applyOverrides(minimal, ['__proto__.x=1'])).toThrow(ConfigError);
  });

  it('reads YAML and JSON files; a syntax error names the file', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-cfg-'));
    try {
      const yaml = path.join(dir, 'exp.yaml');
      await fs.writeFile(yaml, 'model:\n  vision: {config: {model_type: vit}}\n  text: {config: {model_type: distilbert}}\ndata:\n  dataset: {kind: shapes}\n  tokenizer: t.json\nseed: 7\n');
      expect((await loadExperimentConfig(yaml, ['seed=9'])).seed).toBe(9);
      const json = path.join(dir, 'exp.json');
      await fs.writeFile(json, '{"seed": ');
      await expect(loadExperimentConfig(json)).rejects.toThrow(/exp\.json: not valid JSON/);
      await expect(loadExperimentConfig(path.join(dir, 'missing.yaml'))).rejects.toThrow(/cannot read config/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('data.augment and model.vision.patchDropout (issue 14 §4, §5): parsed with defaults, bad values name the key', () => {
    const c = parseExperimentConfig({
      ...minimal,
      model: { ...minimal.model, vision: { ...minimal.model.vision, patchDropout: 0.5 } },
      data: { ...minimal.data, augment: { randomResizedCrop: {}, hflip: 0.5, colorJitter: { brightness: 0.2 } } },
    });
    expect(c.data.augment).toEqual({ randomResizedCrop: { scale: [0.9, 1], ratio: [3 / 4, 4 / 3] }, hflip: 0.5, colorJitter: { brightness: 0.2 } });
    expect('vision' in c.model && c.model.vision.patchDropout).toBe(0.5);
    expect(parseExperimentConfig(minimal).data.augment).toBeUndefined();
    const bad = (over: object) => () => parseExperimentConfig({ ...minimal, ...over });
    expect(bad({ data: { ...minimal.data, augment: { hflip: 2 } } })).toThrow(/data\.augment\.hflip/);
    expect(bad({ data: { ...minimal.data, augment: { randomResizedCrop: { scale: [0.5, 1.5] } } } })).toThrow(/data\.augment\.randomResizedCrop\.scale/);
    expect(bad({ data: { ...minimal.data, augment: { flip: 0.5 } } })).toThrow(/data\.augment/);
    expect(bad({ model: { ...minimal.model, vision: { ...minimal.model.vision, patchDropout: 1 } } })).toThrow(/model\.vision/);
    expect(bad({ model: { ...minimal.model, text: { ...minimal.model.text, patchDropout: 0.5 } } })).toThrow(/model\.text/);
  });

  it('docs/config.schema.json is the JSON Schema generated from the zod schema (CLIP_UPDATE_SCHEMA=1 rewrites it)', () => {
    const file = new URL('../../../docs/config.schema.json', import.meta.url);
    const generated = `${JSON.stringify(experimentJsonSchema(), null, 2)}\n`;
    if (process.env.CLIP_UPDATE_SCHEMA === '1') writeFileSync(file, generated);
    expect(readFileSync(file, 'utf8')).toBe(generated);
  });

  it('threads (wasm backend) is optional, a positive integer, and named when wrong', () => {
    expect(parseExperimentConfig(minimal).threads).toBeUndefined();
    expect(parseExperimentConfig({ ...minimal, threads: 2 }).threads).toBe(2);
    for (const bad of [0, 1.5, '2']) {
      expect(() => parseExperimentConfig({ ...minimal, threads: bad }, 'run.yaml')).toThrow(ConfigError);
      expect(() => parseExperimentConfig({ ...minimal, threads: bad }, 'run.yaml')).toThrow(/run\.yaml[\s\S]*threads/);
    }
  });

  it('maxLength below what the tokenizer needs fails in the schema, naming the key (issue 15, item 9)', () => {
    const bad = { ...minimal, data: { ...minimal.data, maxLength: 2 } };
    expect(() => parseExperimentConfig(bad, 'run.yaml')).toThrow(ConfigError);
    expect(() => parseExperimentConfig(bad, 'run.yaml')).toThrow(/run\.yaml[\s\S]*data\.maxLength: must be ≥ 3/);
    expect(parseExperimentConfig({ ...minimal, data: { ...minimal.data, maxLength: 3 } }).data.maxLength).toBe(3);
  });
});
