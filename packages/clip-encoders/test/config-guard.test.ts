import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipError, CLIPModel, ConfigError, createImageEncoder, createTextEncoder, initBackend, SIZE_BOUNDS } from '@clip-ts/core';
import { loadCLIPModel, saveCLIPModel } from '@clip-ts/core/node';
import { loadEncoderFromDir } from '@clip-ts/encoders/node';

/**
 * A checkpoint's config.json is untrusted (issue 15, item 2): sizes that disagree with the weights file, or
 * are absurd, must end in a typed error before anything big is allocated.
 */

const VISION = { model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 };
const TEXT = { model_type: 'distilbert', vocab_size: 64, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 8 };

let tmp: string;
let base: string;
let baseConfig: Record<string, unknown>;
/** Bytes of the tiny model's weights: a load may allocate a few times this, never more. */
let modelBytes = 0;

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(path.join(tmpdir(), 'config-guard-'));
  base = path.join(tmp, 'base');
  const before = tf.memory().numBytes;
  const model = new CLIPModel({ imageEncoder: createImageEncoder(VISION, { seed: 1 }), textEncoder: createTextEncoder(TEXT, { seed: 2 }), projectionDim: 8 });
  modelBytes = tf.memory().numBytes - before;
  await saveCLIPModel(model, base);
  model.dispose();
  baseConfig = JSON.parse(await readFile(path.join(base, 'config.json'), 'utf8')) as Record<string, unknown>;
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let n = 0;
/** A copy of the tiny checkpoint whose config.json is `config`. */
async function variant(config: unknown): Promise<string> {
  const dir = path.join(tmp, `v${n++}`);
  await mkdir(dir);
  await copyFile(path.join(base, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const withTower = (tower: 'vision_config' | 'text_config', patch: Record<string, unknown>) => ({
  ...baseConfig,
  [tower]: { ...(baseConfig[tower] as object), ...patch },
});

/** Run `load` and report the most tensor memory alive at any moment during it (every new tensor is tracked). */
async function peakBytesDuring<T>(load: () => Promise<T>): Promise<{ result: T | unknown; peak: number }> {
  const engine = tf.engine();
  const start = engine.state.numBytes;
  let peak = 0;
  const original = engine.trackTensor;
  engine.trackTensor = function (this: typeof engine, ...args: Parameters<typeof original>) {
    original.apply(this, args);
    peak = Math.max(peak, engine.state.numBytes - start);
  };
  try {
    return { result: await load(), peak };
  } catch (err) {
    return { result: err, peak };
  } finally {
    engine.trackTensor = original;
  }
}

describe('CLIPModel.load checks config.json sizes against the weights before building anything', () => {
  it.each([
    ['vision_config', { hidden_size: 1e9 }, /vision_config[\s\S]*hidden_size/],
    ['vision_config', { num_hidden_layers: 100000 }, /vision_config[\s\S]*num_hidden_layers/],
    ['vision_config', { num_hidden_layers: 3 }, /vision_config\.num_hidden_layers.*encoder\.layer\.1\.intermediate\.dense\.weight/],
    ['vision_config', { num_hidden_layers: 0 }, /vision_config\.num_hidden_layers: the config says 0 layer/],
    ['vision_config', { intermediate_size: 4096 }, /vision_config\.intermediate_size.*\[32, 16\].*\[4096, 16\]/],
    ['vision_config', { image_size: 4096, patch_size: 8 }, /vision_config\.image_size, vision_config\.patch_size/],
    ['text_config', { vocab_size: 30_000_000 }, /text_config[\s\S]*vocab_size/],
    ['text_config', { vocab_size: 1_000_000 }, /text_config\.vocab_size, text_config\.dim.*\[64, 16\]/],
    ['text_config', { max_position_embeddings: 100_000 }, /text_config\.max_position_embeddings/],
  ] as const)('%s %j → ConfigError naming the key, nothing big allocated', async (tower, patch, message) => {
    const dir = await variant(withTower(tower, patch));
    const before = tf.memory().numTensors;
    const { result, peak } = await peakBytesDuring(() => loadCLIPModel(dir));
    expect(result).toBeInstanceOf(ConfigError);
    expect((result as Error).message).toContain(path.join(dir, 'config.json'));
    expect((result as Error).message).toMatch(message);
    expect(peak).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('projection_dim is checked against the heads', async () => {
    const dir = await variant({ ...baseConfig, projection_dim: 60_000 });
    const { result, peak } = await peakBytesDuring(() => loadCLIPModel(dir));
    expect(result).toBeInstanceOf(ConfigError);
    expect((result as Error).message).toMatch(/projection_dim.*visual_projection\.layer_norm\.weight/);
    expect(peak).toBe(0);
  });

  it('loadEncoderFromDir (HF tower directories) runs the same check', async () => {
    const dir = await variant(withTower('vision_config', {}));
    // A ViT directory: the CLIP checkpoint's vision weights carry the vision_model. prefix the loader strips.
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...VISION, hidden_size: 4096, num_attention_heads: 2 }));
    const { result, peak } = await peakBytesDuring(() => loadEncoderFromDir(dir));
    expect(result).toBeInstanceOf(ConfigError);
    expect((result as Error).message).toMatch(/hidden_size.*embeddings\.cls_token/);
    expect(peak).toBe(0);
  });

  it('fuzz: random size values in config.json end in a typed error or a valid model, within an allocation bound', async () => {
    const keys = {
      vision_config: ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'image_size', 'patch_size', 'num_channels'],
      text_config: ['vocab_size', 'dim', 'n_layers', 'n_heads', 'hidden_dim', 'max_position_embeddings'],
    } as const;
    const value = fc.oneof(
      fc.integer({ min: -2, max: 70 }),
      fc.constantFrom(1e9, 100_000, 2 ** 31, SIZE_BOUNDS.width, SIZE_BOUNDS.width + 1, 4096, 1.5, -1e9, Number.MAX_SAFE_INTEGER),
      fc.constantFrom('16', null, [16, 16], [8, 1e6], true, {}),
    );
    const mutation = fc.oneof(
      fc.record({ tower: fc.constant('vision_config' as const), key: fc.constantFrom(...keys.vision_config), value }),
      fc.record({ tower: fc.constant('text_config' as const), key: fc.constantFrom(...keys.text_config), value }),
      fc.record({ tower: fc.constant(null), key: fc.constant('projection_dim'), value }),
    );
    const before = tf.memory().numTensors;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        let config: Record<string, unknown> = { ...baseConfig };
        for (const m of mutations) config = m.tower ? { ...config, [m.tower]: { ...(config[m.tower] as object), [m.key]: m.value } } : { ...config, [m.key]: m.value };
        const dir = await variant(config);
        const { result, peak } = await peakBytesDuring(() => loadCLIPModel(dir));
        if (result instanceof CLIPModel) result.dispose();
        else expect(result).toBeInstanceOf(ClipError);
        // A model that loads has exactly the file's weights; a few working copies at most.
        expect(peak).toBeLessThanOrEqual(4 * modelBytes);
        await rm(dir, { recursive: true, force: true });
      }),
      { numRuns: 150, seed: 15 },
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
