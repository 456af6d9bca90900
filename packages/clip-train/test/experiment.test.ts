import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BackendError, ConfigError, DataError } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { CLIP } from '@clip-ts/encoders';
import { formatResultsTable, runExperiment } from '../src/experiment/index.js';
import { TrainingError } from '../src/trainer/index.js';
import { tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

const tmpDir = useTmpDirs('clip-exp-');

const quiet = () => {
  const err: string[] = [];
  return { io: { stdout: () => {}, stderr: (t: string) => void err.push(t) }, err };
};
const strip = (h: Record<string, number>[]) => h.map(({ seconds: _s, ...rest }) => rest);
async function weights(dir: string): Promise<Map<string, number[]>> {
  const st = await readSafetensors(path.join(dir, 'model.safetensors'));
  return new Map([...st.tensors].map(([k, t]) => [k, Array.from(t.data)]));
}

describe('runExperiment', () => {
  it('trains a tiny CLIP on shapes and writes the whole run directory', async () => {
    const runDir = await tmpDir();
    const { io, err } = quiet();
    const before = tf.memory().numTensors;
    const r = await runExperiment(tinyConfig(runDir), { io });
    expect(tf.memory().numTensors).toBe(before);
    expect((await fs.readdir(runDir)).sort()).toEqual(['.clip-run', 'best', 'config.json', 'history.csv', 'history.jsonl', 'last', 'loss.png', 'loss.svg', 'results.json']);
    expect(r.epochs).toBe(2);
    expect(r.history).toHaveLength(2);
    expect(r.history[1]!.loss).toBeLessThan(r.history[0]!.loss!);
    expect(r.test!.batchSize).toBe(8);
    expect(r.test!.retrieval).toMatchObject({ images: 8, captions: 40 });
    expect(r.test!.retrieval.recall.map((x) => x.k)).toEqual([1, 5, 10]);
    const rec = r.test!.retrieval.recall;
    for (const dir of ['imageToText', 'textToImage'] as const) {
      expect(rec[0]![dir]).toBeLessThanOrEqual(rec[1]![dir]);
      expect(rec[1]![dir]).toBeLessThanOrEqual(rec[2]![dir]);
    }
    expect(rec[2]!.textToImage).toBe(1); // K = 10 ≥ the 8 test images
    const saved = JSON.parse(await fs.readFile(path.join(runDir, 'results.json'), 'utf8'));
    expect(saved.test.loss).toBeCloseTo(r.test!.loss, 10);
    const table = formatResultsTable(r);
    expect(table.split('\n')[0]).toMatch(/^\| Metric +\| Value +\|$/);
    expect(table).toMatch(/\| Test top-1 accuracy \(in-batch, batch 8\) +\| \d+\.\d\d% +\|/);
    expect(table).toMatch(/Image→text Recall@10/);
    expect(err.join('')).toMatch(/epoch 2\/2 {2}loss/);
    // Checkpoints stand alone: the tokenizer and preprocessing travel with the weights.
    for (const sub of ['best', 'last']) {
      const files = await fs.readdir(path.join(runDir, sub));
      expect(files).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']));
    }
    const loaded = await CLIP.fromPretrained(path.join(runDir, 'best'));
    expect(loaded.maxLength).toBe(tinyConfig(runDir).data.maxLength);
    loaded.dispose();
    // Existing run: refuses to overwrite it.
    await expect(runExperiment(tinyConfig(runDir), { io })).rejects.toThrow(TrainingError);
  });

  it('resume: 1 epoch, then resume to 2 ends with the same history, weights and test metrics as 2 straight epochs', async () => {
    const a = await tmpDir();
    const b = await tmpDir();
    const { io } = quiet();
    const straight = await runExperiment(tinyConfig(a), { io });
    await runExperiment(tinyConfig(b, { schedule: { epochs: 1 } }), { io });
    const resumed = await runExperiment(tinyConfig(b), { io, resume: true });
    expect(strip(resumed.history)).toEqual(strip(straight.history));
    expect(resumed.test).toEqual(straight.test);
    expect(await weights(path.join(b, 'last'))).toEqual(await weights(path.join(a, 'last')));
  });

  it('Ctrl-C (abort) mid-epoch saves a resumable checkpoint; resuming ends like an uninterrupted run, dropout included', async () => {
    const a = await tmpDir();
    const b = await tmpDir();
    const { io } = quiet();
    // Dropout on in both towers and the mlp heads: the generators' states must travel with last/.
    const withDropout = (dir: string) => {
      const c = tinyConfig(dir);
      const vision = (c.model!.vision as { config: { model_type: string } }).config;
      const text = (c.model!.text as { config: { model_type: string } }).config;
      return {
        ...c,
        model: { ...c.model!, head: 'mlp' as const, dropout: 0.2, vision: { config: { ...vision, hidden_dropout_prob: 0.1 } }, text: { config: { ...text, dropout: 0.1 } } },
      };
    };
    const straight = await runExperiment(withDropout(a), { io });
    const controller = new AbortController();
    const lines: string[] = [];
    // Ctrl-C right after epoch 1's progress line: fit() stops at the next step boundary.
    const ioAbort = { stdout: () => {}, stderr: (t: string) => {
      lines.push(t);
      if (t.startsWith('epoch 1/2')) controller.abort();
    } };
    const r1 = await runExperiment(withDropout(b), { io: ioAbort, signal: controller.signal });
    expect(r1.interrupted).toBe(true);
    expect(r1.test).toBeNull();
    expect(r1.epochs).toBe(1);
    const resumed = await runExperiment(withDropout(b), { io, resume: true });
    expect(strip(resumed.history)).toEqual(strip(straight.history));
    expect(await weights(path.join(b, 'last'))).toEqual(await weights(path.join(a, 'last')));
  });

  it('frozen towers: training on cached features follows the uncached trajectory (per-epoch losses within 1e-5) and reuses the cache', async () => {
    const a = await tmpDir();
    const b = await tmpDir();
    const cacheDir = await tmpDir();
    const { io, err } = quiet();
    const frozen = (dir: string, cache: boolean) => {
      const c = tinyConfig(dir, { featureCache: cache ? { enabled: 'auto', dir: cacheDir } : { enabled: false } });
      return { ...c, model: { ...c.model!, freeze: 'towers' as const }, schedule: { epochs: 3 } };
    };
    const uncached = await runExperiment(frozen(a, false), { io });
    const before = tf.memory().numTensors;
    const cached = await runExperiment(frozen(b, true), { io });
    expect(tf.memory().numTensors).toBe(before); // cached features are freed with the run
    expect(uncached.featureCache).toBe(false);
    expect(cached.featureCache).toBe(true);
    cached.history.forEach((h, i) => {
      expect(Math.abs(h.loss! - uncached.history[i]!.loss!)).toBeLessThan(1e-5);
      expect(Math.abs(h.val_loss! - uncached.history[i]!.val_loss!)).toBeLessThan(1e-5);
    });
    expect(err.join('')).toMatch(/feature cache: train computed into/);
    const c = await tmpDir();
    const again = quiet();
    await runExperiment(frozen(c, true), { io: again.io });
    expect(again.err.join('')).toMatch(/feature cache: train read from/);
  });

  it('bad input gives typed errors that say what to fix', async () => {
    const dir = await tmpDir();
    const { io } = quiet();
    // resume without state
    await expect(runExperiment(tinyConfig(dir), { io, resume: true })).rejects.toThrow(/cannot resume: .* has no last\/ checkpoint/);
    // dataset root that does not match the kind
    const notFlickr = await tmpDir();
    await fs.writeFile(path.join(notFlickr, 'readme.txt'), 'hi');
    const flickr = tinyConfig(dir, {});
    await expect(runExperiment({ ...flickr, data: { ...flickr.data!, dataset: { kind: 'flickr8k', root: notFlickr } } }, { io })).rejects.toBeInstanceOf(DataError);
    // a missing backend
    await expect(runExperiment({ ...tinyConfig(dir), backend: 'tensorflow' }, { io })).rejects.toBeInstanceOf(BackendError);
    // vision tower image size vs data.imageSize
    const c = tinyConfig(dir);
    await expect(runExperiment({ ...c, data: { ...c.data!, imageSize: 32 } }, { io })).rejects.toThrow(/data\.imageSize is 32 but the vision tower takes 16×16/);
    // strict config
    await expect(runExperiment({ ...tinyConfig(dir), extra: 1 } as never, { io })).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses to resume from a checkpoint of an incompatible config', async () => {
    const dir = await tmpDir();
    const { io } = quiet();
    await runExperiment(tinyConfig(dir, { schedule: { epochs: 1 } }), { io });
    const c = tinyConfig(dir);
    const other = { ...c, model: { ...c.model!, projectionDim: 4 } };
    await expect(runExperiment(other, { io, resume: true })).rejects.toThrow(/incompatible config:\nmodel\.projectionDim: checkpoint has 8, config has 4/);
  });
});
