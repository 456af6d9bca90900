import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, ZeroShotClassifier, type CLIPModel } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { CLIP, tokenizeCLIP } from '@clip-ts/encoders';
import { ClipImageProcessor, loadCLIPTokenizer, loadHFCLIPModel, loadImageProcessor } from '@clip-ts/encoders/node';
import { CaptionLoader, loadFlickr8k } from '@clip-ts/data';
import { writeMiniFlickr8k } from '../../../examples/src/mini-data.js';
import { runExperiment, type Results } from '../src/experiment/index.js';
import type { ExperimentConfigInput } from '../src/config/index.js';
import { clipModelTask } from '../src/experiment/model.js';
import { evaluateCaptionSplit } from '../src/evaluation/split.js';
import { writeTinyCheckpoint } from './helpers/tiny-checkpoint.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

/**
 * Fine-tuning a whole pretrained HF CLIP (model.pretrained) end to end on the clip-tiny fixture (image size
 * 30, CLIP tokenizer) with generated Flickr8k-format data: checkpoints in the HF CLIP layout, LiT freezing,
 * the feature cache, resume.
 */

const CLIP_TINY = fileURLToPath(new URL('../../clip-encoders/test/fixtures/hf/clip-tiny/', import.meta.url));
const tmpDir = useTmpDirs('clip-pretrained-');
const quiet = { stdout: () => {}, stderr: () => {} };

let data: string;
beforeAll(async () => {
  await initBackend('cpu');
  // Not a useTmpDirs dir: those are removed after each test, and every test trains on this data.
  data = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-pretrained-data-'));
  // 32 px JPEGs: the fixture's CLIPImageProcessor resizes (shortest edge 30) and centre-crops to 30.
  await writeMiniFlickr8k(data, { train: 8, dev: 4, test: 4, seed: 7 });
});

afterAll(async () => {
  await fs.rm(data, { recursive: true, force: true });
});

function config(runDir: string, model: ExperimentConfigInput['model'], epochs = 3): ExperimentConfigInput {
  return {
    seed: 11,
    backend: 'cpu',
    model,
    // 'first' caption: validation pairs do not depend on the loader's seed, so they can be rebuilt below.
    data: { dataset: { kind: 'flickr8k', root: data }, maxLength: 16, batchSize: 4, captionPick: 'first' },
    optim: { lr: 2e-3 },
    schedule: { epochs, reduceLROnPlateau: false, earlyStopping: false },
    output: { runDir },
  };
}

async function weights(dir: string): Promise<Map<string, Float32Array>> {
  const st = await readSafetensors(path.join(dir, 'model.safetensors'));
  return new Map([...st.tensors].map(([k, t]) => [k, t.data as Float32Array]));
}

/** Keys of `a` whose values differ from `b`'s, among those starting with `prefix`. */
function changed(a: Map<string, Float32Array>, b: Map<string, Float32Array>, prefix: string): string[] {
  return [...a.keys()].filter((k) => k.startsWith(prefix) && Buffer.compare(Buffer.from(a.get(k)!.buffer), Buffer.from(b.get(k)!.buffer)) !== 0);
}

/** The validation loss of `model` on the run's val split, recomputed outside the run. */
async function valLoss(model: CLIPModel): Promise<number> {
  const { val } = loadFlickr8k(data);
  const tokenizer = (await loadCLIPTokenizer(CLIP_TINY)).tokenizer;
  const loader = new CaptionLoader(val, { batchSize: 4, imageProcessor: await loadImageProcessor(CLIP_TINY), tokenizer, maxLength: 16, captionPick: 'first', seed: 0 });
  const { logs } = await evaluateCaptionSplit(clipModelTask(model, { vision: true, text: true }), { batches: (_e, o) => loader.batches(0, o) }, { topK: [1] });
  return logs.loss as number;
}

describe('fine-tuning a pretrained HF CLIP (model.pretrained)', () => {
  it('full fine-tuning: loss goes down, best/ is an HF CLIP repo that reloads to the trained model and runs zero-shot', async () => {
    const runDir = await tmpDir();
    const before = tf.memory().numTensors;
    const r: Results = await runExperiment(config(runDir, { pretrained: CLIP_TINY }), { io: quiet });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.featureCache).toBe(false);
    expect(r.history).toHaveLength(3);
    expect(r.history[2]!.loss).toBeLessThan(r.history[0]!.loss!);

    const best = path.join(runDir, 'best');
    for (const dir of [best, path.join(runDir, 'last')]) {
      expect(await fs.readdir(dir)).toEqual(
        expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json']),
      );
      const cfg = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(cfg).toMatchObject({ model_type: 'clip', architectures: ['CLIPModel'], projection_dim: 16 });
    }
    // Same keys and shapes as the pretrained repo; the weights moved.
    const start = await weights(CLIP_TINY);
    const trained = await weights(best);
    expect([...trained.keys()].sort()).toEqual([...start.keys()].sort());
    expect(changed(trained, start, 'vision_model.').length).toBeGreaterThan(0);
    expect(changed(trained, start, 'text_model.').length).toBeGreaterThan(0);
    // The preprocessing travels unchanged: the repo's CLIPImageProcessor config and tokenizer.
    expect(JSON.parse(await fs.readFile(path.join(best, 'preprocessor_config.json'), 'utf8'))).toEqual(
      JSON.parse(await fs.readFile(path.join(CLIP_TINY, 'preprocessor_config.json'), 'utf8')),
    );
    expect(await fs.readFile(path.join(best, 'tokenizer.json'), 'utf8')).toBe(await fs.readFile(path.join(CLIP_TINY, 'tokenizer.json'), 'utf8'));

    // CLIP.fromPretrained reads the HF layout, with the repo's CLIP tokenizer length, and runs zero-shot on it.
    const clip = await CLIP.fromPretrained(best);
    try {
      expect(clip.kind).toBe('clip');
      expect(clip.maxLength).toBe(77);
      const imageFile = path.join(data, 'Images', (await fs.readdir(path.join(data, 'Images')))[0]!);
      const [top] = await clip.zeroShot([imageFile], ['red circle', 'green square', 'blue triangle']);
      expect([...top!.labels].sort()).toEqual(['blue triangle', 'green square', 'red circle']);
      expect(top!.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    } finally {
      clip.dispose();
    }

    const model = await loadHFCLIPModel(best);
    try {
      // The validation loss the run logged for its best epoch (computed on the in-memory model) is
      // reproduced by the reloaded checkpoint.
      const bestLogs = r.history[r.bestEpoch - 1]!;
      expect(await valLoss(model)).toBeCloseTo(bestLogs.val_loss!, 5);

      const tok = await loadCLIPTokenizer(best);
      const processor = new ClipImageProcessor((await loadImageProcessor(best)).options);
      const classes = ['red circle', 'green square', 'blue triangle'];
      const zs = ZeroShotClassifier.create(model, (texts) => tokenizeCLIP(tok, texts, { padding: 'longest' }), classes, ['a photo of a {}.']);
      const image = await processor.processFile(path.join(data, 'Images', (await fs.readdir(path.join(data, 'Images')))[0]!));
      const px = tf.tensor4d(image, [1, 3, 30, 30]);
      try {
        const [pred] = await zs.classify(px, 3);
        expect([...pred!.labels].sort()).toEqual([...classes].sort());
        expect(pred!.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        expect(pred!.probabilities[0]).toBeGreaterThanOrEqual(pred!.probabilities[1]!);
      } finally {
        px.dispose();
        zs.dispose();
      }
    } finally {
      model.dispose();
    }
  }, 300_000);

  it('LiT (lock the image tower): vision weights stay bit-identical, the text tower trains; resume continues the run exactly', async () => {
    const lit = { pretrained: CLIP_TINY, freeze: { vision: 'all' as const, text: 'none' as const } };
    const straight = await tmpDir();
    await runExperiment(config(straight, lit, 2), { io: quiet });
    const start = await weights(CLIP_TINY);
    const trained = await weights(path.join(straight, 'last'));
    expect(changed(trained, start, 'vision_model.')).toEqual([]);
    expect(changed(trained, start, 'text_model.').length).toBeGreaterThan(0);

    // One epoch, then resume to two: the same weights as the straight run (trainer state in last/).
    const resumed = await tmpDir();
    await runExperiment(config(resumed, lit, 1), { io: quiet });
    expect(await fs.readdir(path.join(resumed, 'last'))).toEqual(expect.arrayContaining(['config.json', 'model.safetensors']));
    const r = await runExperiment(config(resumed, lit, 2), { io: quiet, resume: true });
    expect(r.epochs).toBe(2);
    const again = await weights(path.join(resumed, 'last'));
    for (const [k, v] of trained) expect(again.get(k), k).toEqual(v);
  }, 300_000);

  it('both towers frozen: trains on the feature cache; only the projections and the scale change', async () => {
    const runDir = await tmpDir();
    const r = await runExperiment(config(runDir, { pretrained: CLIP_TINY, freeze: 'towers' }, 2), { io: quiet });
    expect(r.featureCache).toBe(true);
    expect((await fs.readdir(path.join(runDir, 'feature-cache'))).length).toBeGreaterThan(0);
    const start = await weights(CLIP_TINY);
    const trained = await weights(path.join(runDir, 'best'));
    expect(changed(trained, start, 'vision_model.')).toEqual([]);
    expect(changed(trained, start, 'text_model.')).toEqual([]);
    expect(changed(trained, start, 'visual_projection.')).toEqual(['visual_projection.weight']);
    expect(changed(trained, start, 'text_projection.')).toEqual(['text_projection.weight']);
  }, 300_000);

  it('a clip-ts checkpoint (e.g. a run’s best/) as model.pretrained: trains and keeps the clip-ts layout with its assets', async () => {
    const start = await writeTinyCheckpoint(await tmpDir());
    const runDir = await tmpDir();
    const r = await runExperiment(
      {
        seed: 3,
        backend: 'cpu',
        model: { pretrained: start },
        data: { dataset: { kind: 'shapes', options: { seed: 5, imageSize: 16, trainSize: 8, valSize: 4, testSize: 4 } }, maxLength: 8, batchSize: 4 },
        schedule: { epochs: 1 },
        output: { runDir },
      },
      { io: quiet },
    );
    expect(r.epochs).toBe(1);
    const best = path.join(runDir, 'best');
    expect(JSON.parse(await fs.readFile(path.join(best, 'config.json'), 'utf8')).model_type).toBe('clip-ts');
    const clip = await CLIP.fromPretrained(best);
    expect(clip.maxLength).toBe(8); // this run's caption length, as for any clip-ts run
    clip.dispose();
    expect(changed(await weights(best), await weights(start), 'visual_projection.').length).toBeGreaterThan(0);
  }, 300_000);

  it('a Hub id resolves through the Hub cache (offline), like the towers', async () => {
    const cache = await tmpDir();
    const repo = path.join(cache, 'models--test-org--clip-tiny');
    const snapshot = path.join(repo, 'snapshots', 'c0ffee');
    await fs.mkdir(snapshot, { recursive: true });
    await fs.mkdir(path.join(repo, 'refs'));
    await fs.writeFile(path.join(repo, 'refs', 'main'), 'c0ffee');
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json']) {
      await fs.copyFile(path.join(CLIP_TINY, f), path.join(snapshot, f));
    }
    const saved = { cache: process.env.HF_HUB_CACHE, offline: process.env.HF_HUB_OFFLINE };
    process.env.HF_HUB_CACHE = cache;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const runDir = await tmpDir();
      const r = await runExperiment(config(runDir, { pretrained: 'test-org/clip-tiny', freeze: 'towers' }, 1), { io: quiet });
      expect(r.featureCache).toBe(true);
      const trained = await weights(path.join(runDir, 'best'));
      expect(changed(trained, await weights(CLIP_TINY), 'vision_model.')).toEqual([]);
      // Not in the cache and offline: the Hub client's error, naming the id.
      await expect(runExperiment(config(await tmpDir(), { pretrained: 'test-org/missing' }, 1), { io: quiet })).rejects.toThrow(/test-org\/missing.*offline/);
    } finally {
      for (const [k, v] of [['HF_HUB_CACHE', saved.cache], ['HF_HUB_OFFLINE', saved.offline]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }, 300_000);
});
