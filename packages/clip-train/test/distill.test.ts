import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CLIPModel, ClipError, createImageEncoder, createTextEncoder, type ImageInput, type TextInput } from '@clip-ts/core';
import { saveCLIPModel } from '@clip-ts/core/node';
import '@clip-ts/encoders';
import { allCaptions, createShapes } from '@clip-ts/data';
import { ExperimentConfigSchema } from '../src/config/schema.js';
import { saveCheckpointAssets } from '../src/experiment/checkpoint-assets.js';
import { runExperiment } from '../src/experiment/index.js';
import { TINY_CLIP_CONFIG } from './helpers/tiny-checkpoint.js';
import { TOKENIZER, tinyConfig } from './helpers/tiny-config.js';
import { useTmpDirs } from './helpers/tmp-dirs.js';

// Issue 14 §6 through runExperiment: a tiny teacher (towers 24 wide, so its calls can be told apart from
// the 16-wide student's) distilled into the tiny student.
const tmpDir = useTmpDirs('clip-distill-');
const quiet = { stdout: () => {}, stderr: () => {} };
const strip = (h: Record<string, number>[]) => h.map(({ seconds: _s, ...rest }) => rest);
const TEACHER_WIDTH = 24;

async function writeTeacher(): Promise<string> {
  const dir = await tmpDir();
  const config = {
    ...TINY_CLIP_CONFIG,
    projection_dim: 12,
    logit_scale_init_value: 3,
    vision_config: { ...TINY_CLIP_CONFIG.vision_config, hidden_size: TEACHER_WIDTH },
    text_config: { ...TINY_CLIP_CONFIG.text_config, dim: TEACHER_WIDTH },
  };
  const model = CLIPModel.fromConfig(config, { seed: 9 });
  await saveCLIPModel(model, dir);
  model.dispose();
  await saveCheckpointAssets(dir, { tokenizerFile: TOKENIZER, maxLength: 16, imageProcessor: { height: 16, width: 16 } });
  return dir;
}

/** Rows each tower kind encodes for the teacher (told apart by width), counted on the tower classes. */
function countTeacherRows(): { images: number; texts: number } {
  const counts = { images: 0, texts: 0 };
  const vit = Object.getPrototypeOf(createImageEncoder(TINY_CLIP_CONFIG.vision_config, { seed: 1 })) as { encode(this: { hiddenSize: number }, x: ImageInput, o?: unknown): tf.Tensor2D };
  const bert = Object.getPrototypeOf(createTextEncoder(TINY_CLIP_CONFIG.text_config, { seed: 1 })) as { encode(this: { hiddenSize: number }, x: TextInput, o?: unknown): tf.Tensor2D };
  const imageEncode = vit.encode;
  const textEncode = bert.encode;
  vi.spyOn(vit, 'encode').mockImplementation(function (this: { hiddenSize: number }, x: ImageInput, o?: unknown) {
    if (this.hiddenSize === TEACHER_WIDTH) counts.images += (x as tf.Tensor).shape[0] as number;
    return imageEncode.call(this, x, o);
  });
  vi.spyOn(bert, 'encode').mockImplementation(function (this: { hiddenSize: number }, x: TextInput, o?: unknown) {
    if (this.hiddenSize === TEACHER_WIDTH) counts.texts += x.inputIds.shape[0] as number;
    return textEncode.call(this, x, o);
  });
  return counts;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('distill', () => {
  it('embeds every training image and caption with the teacher once (none on resume: read from the cache), and 1 epoch + resume = 2 straight epochs', async () => {
    const teacher = await writeTeacher();
    const a = await tmpDir();
    const b = await tmpDir();
    const distill = { teacher };
    const counts = countTeacherRows();
    const before = tf.memory().numTensors;
    const straight = await runExperiment(tinyConfig(a, { distill, schedule: { epochs: 2 } }), { io: quiet });
    expect(tf.memory().numTensors).toBe(before);
    const train = createShapes({ seed: 5, imageSize: 16, trainSize: 24, valSize: 8, testSize: 8 }).train;
    expect(counts).toEqual({ images: 24, texts: allCaptions(train).texts.length });

    const log: string[] = [];
    await runExperiment(tinyConfig(b, { distill, schedule: { epochs: 1 } }), { io: { stdout: () => {}, stderr: (t) => void log.push(t) } });
    expect(log.join('')).toMatch(/distill: teacher .* computed into/);
    counts.images = 0;
    counts.texts = 0;
    log.length = 0;
    const resumed = await runExperiment(tinyConfig(b, { distill, schedule: { epochs: 2 } }), { io: { stdout: () => {}, stderr: (t) => void log.push(t) }, resume: true });
    expect(counts).toEqual({ images: 0, texts: 0 });
    expect(log.join('')).toMatch(/distill: teacher .* read from/);
    expect(strip(resumed.history)).toEqual(strip(straight.history));
  });

  it('weight 0 trains as without a teacher; weight 1 adds the distillation term to the training loss only (val_loss stays the CLIP loss)', async () => {
    const teacher = await writeTeacher();
    const run = async (distill?: { teacher: string; weight: number }) =>
      runExperiment(tinyConfig(await tmpDir(), { schedule: { epochs: 1 }, ...(distill ? { distill } : {}) }), { io: quiet });
    const plain = await run();
    const zero = await run({ teacher, weight: 0 });
    const one = await run({ teacher, weight: 1 });
    // Weight 0: the same CLIP loss, computed from the normalised embeddings (float rounding only).
    expect(zero.history[0]!.loss).toBeCloseTo(plain.history[0]!.loss!, 4);
    expect(zero.history[0]!.val_loss).toBeCloseTo(plain.history[0]!.val_loss!, 4);
    // The distillation term is a cross-entropy over 8 candidates (≥ the teacher's entropy, > 0): well above rounding.
    expect(one.history[0]!.loss! - plain.history[0]!.loss!).toBeGreaterThan(0.5);
    // Validation reports the CLIP loss only: near the plain run's after one epoch, not ~its training gap above it.
    expect(Math.abs(one.history[0]!.val_loss! - plain.history[0]!.val_loss!)).toBeLessThan(0.5);
  });

  it('is refused with loss: siglip, and a teacher directory that does not exist is a typed error naming it', async () => {
    const parsed = ExperimentConfigSchema.safeParse(tinyConfig('runs/x', { loss: 'siglip', distill: { teacher: 'x' } }));
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toMatch(/cannot be combined with loss: siglip/);
    const missing = path.join(await tmpDir(), 'no-such-teacher');
    const err = await runExperiment(tinyConfig(await tmpDir(), { distill: { teacher: missing } }), { io: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClipError);
    expect((err as Error).message).toContain(missing);
  });
});
