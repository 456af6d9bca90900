import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@clip-ts/core';
import { resizeRgb8, tokenizeCLIP, type CLIPTokenizer } from '@clip-ts/encoders';
import { loadCLIPTokenizer, loadImageProcessor } from '@clip-ts/encoders/node';
import { fixtureDir, readIO } from './helpers.js';

/**
 * The real openai/clip-vit-base-patch32 tokenizer and HF's CLIPImageProcessor (PIL) semantics against the
 * fixtures' recorded ids and pixels. Both fixtures share one vendored tokenizer.json (clip-tiny's).
 */

interface Captions {
  captions: string[];
  input_ids: number[][];
  padding: 'longest' | 'max_length';
  padded_length: number;
  pad_token_id: number;
  images: { file: string; width: number; height: number; resized_hw: [number, number]; crop_top_left: [number, number] }[];
}

const TOKENIZER_JSON = join(fixtureDir('clip-tiny'), 'tokenizer.json');

async function captions(name: string): Promise<Captions> {
  return JSON.parse(await readFile(join(fixtureDir(name), 'captions.json'), 'utf8')) as Captions;
}

/** A repo dir holding the shared tokenizer.json and `name`'s tokenizer_config / special_tokens_map (or `edit`ed ones). */
async function tokenizerDir(name: string, edit?: (cfg: Record<string, unknown>) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clip-tok-'));
  await copyFile(TOKENIZER_JSON, join(dir, 'tokenizer.json'));
  await copyFile(join(fixtureDir(name), 'special_tokens_map.json'), join(dir, 'special_tokens_map.json'));
  const cfg = JSON.parse(await readFile(join(fixtureDir(name), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  edit?.(cfg);
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
  return dir;
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe('CLIP tokenizer', () => {
  it.each(['clip-tiny', 'clip-tiny-gelu'])('%s: exact input_ids and attention_mask of the captions', async (name) => {
    const caps = await captions(name);
    const io = await readIO(name);
    const dir = await tokenizerDir(name);
    const clip = await loadCLIPTokenizer(dir);
    expect(clip.maxLength).toBe(77);
    expect(clip.tokenizer.padTokenId).toBe(caps.pad_token_id);
    caps.captions.forEach((c, i) => expect(clip.tokenizer.encodeOne(c)).toEqual(caps.input_ids[i]));
    const maxLength = caps.padding === 'max_length' ? caps.padded_length : undefined;
    const { inputIds, attentionMask } = tokenizeCLIP(clip, caps.captions, { padding: caps.padding, maxLength });
    expect(inputIds.shape).toEqual([caps.captions.length, caps.padded_length]);
    expect(Array.from(inputIds.dataSync())).toEqual(Array.from(io.get('input_ids')!.data));
    expect(Array.from(attentionMask.dataSync())).toEqual(Array.from(io.get('attention_mask')!.data));
    tf.dispose([inputIds, attentionMask]);
    await rm(dir, { recursive: true });
  });

  it('truncation keeps <|startoftext|> … <|endoftext|>; pad token from special_tokens_map when the config has none', async () => {
    const caps = await captions('clip-tiny-gelu');
    const dir = await tokenizerDir('clip-tiny', (cfg) => {
      delete cfg.pad_token;
      delete cfg.model_max_length;
    });
    const clip: CLIPTokenizer = await loadCLIPTokenizer(dir, 5);
    expect(clip.maxLength).toBe(5);
    expect(clip.tokenizer.padTokenId).toBe(49407);
    const { inputIds } = tokenizeCLIP(clip, [caps.captions[0]!, 'a']);
    const full = caps.input_ids[0]!;
    expect(Array.from(inputIds.dataSync())).toEqual([...full.slice(0, 4), 49407, 49406, 320, 49407, 49407, 49407]);
    inputIds.dispose();
    await rm(dir, { recursive: true });
  });

  it('a bad tokenizer_config is a TokenizerError naming the file', async () => {
    const dir = await tokenizerDir('clip-tiny', (cfg) => {
      cfg.model_max_length = 'long';
    });
    await expect(loadCLIPTokenizer(dir)).rejects.toThrow(/tokenizer_config\.json: invalid:\nmodel_max_length/);
    await rm(dir, { recursive: true });
  });
});

describe('CLIPImageProcessor semantics', () => {
  it.each(['clip-tiny', 'clip-tiny-gelu'])('%s: resized images exact, processed_pixel_values within 1e-5 (decoder sharp)', async (name) => {
    const caps = await captions(name);
    const io = await readIO(name);
    // decoder 'sharp' decodes JPEGs as Pillow does; the default libjpeg-turbo fast IDCT is checked below.
    const pp = await loadImageProcessor(fixtureDir(name), { decoder: 'sharp' });
    const fast = await loadImageProcessor(fixtureDir(name));
    // preprocessor_config: shortest_edge S, crop S×S, bicubic (resample 3).
    expect(pp.options.resample).toBe('bicubic');
    expect(pp.options.shortestEdge).toBe(pp.height);
    const ref = io.get('processed_pixel_values')!;
    const per = ref.data.length / caps.images.length;
    for (const [k, img] of caps.images.entries()) {
      // The PIL bicubic resize of the decoded pixels is bit-exact; the file pipeline (decode, resize, crop
      // with floored offsets, rescale, normalise) then matches to float32 rounding.
      const rgb = io.get(`image_${k}_rgb`)!;
      expect(rgb.shape).toEqual([img.height, img.width, 3]);
      const [rh, rw] = img.resized_hw;
      const resized = resizeRgb8(Uint8Array.from(rgb.data), img.width, img.height, rw, rh, 'bicubic');
      expect(Array.from(resized)).toEqual(Array.from(io.get(`image_${k}_resized`)!.data));
      const out = await pp.processFile(join(fixtureDir(name), img.file));
      let max = 0;
      for (let i = 0; i < per; i++) max = Math.max(max, Math.abs((out[i] as number) - (ref.data[k * per + i] as number)));
      expect(max, img.file).toBeLessThan(1e-5);
      // The default decoder: measured ≤ 0.086 (5.8 grey levels) on these JPEGs, see image-pipeline.test.ts.
      const def = await fast.processFile(join(fixtureDir(name), img.file));
      let maxFast = 0;
      for (let i = 0; i < per; i++) maxFast = Math.max(maxFast, Math.abs((def[i] as number) - (ref.data[k * per + i] as number)));
      expect(maxFast, img.file).toBeLessThan(6 / 255 / 0.2613);
    }
  });
});
