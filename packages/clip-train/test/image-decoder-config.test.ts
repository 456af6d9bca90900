import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ImageProcessor } from '@clip-ts/core';
import { ClipImageProcessor } from '@clip-ts/encoders/node';
import { parseExperimentConfig } from '../src/config/index.js';
import { loadPreprocessing } from '../src/experiment/data.js';
import { TOKENIZER } from './helpers/tiny-config.js';

const CLIP_TINY = fileURLToPath(new URL('../../clip-encoders/test/fixtures/hf/clip-tiny/', import.meta.url));
/** The decoder of a processor loadPreprocessing built (always a ClipImageProcessor for these configs). */
function decoderOf(p: ImageProcessor): string {
  if (!(p instanceof ClipImageProcessor)) throw new Error(`expected a ClipImageProcessor, got ${p.constructor.name}`);
  return p.options.decoder;
}

const towers = { vision: { config: { model_type: 'vit' } }, text: { config: { model_type: 'distilbert' } } };

describe('data.imageDecoder', () => {
  it("defaults to 'turbo' and reaches the image processor; 'sharp' too, also for a pretrained CLIP's processor", async () => {
    const byDefault = parseExperimentConfig({ model: towers, data: { dataset: { kind: 'shapes' }, tokenizer: TOKENIZER } });
    expect(byDefault.data.imageDecoder).toBe('turbo');
    const exact = parseExperimentConfig({ model: towers, data: { dataset: { kind: 'shapes' }, tokenizer: TOKENIZER, imageDecoder: 'sharp' } });
    const [a, b] = await Promise.all([loadPreprocessing(byDefault.data, byDefault.model), loadPreprocessing(exact.data, exact.model)]);
    expect(decoderOf(a.imageProcessor)).toBe('turbo');
    expect(decoderOf(b.imageProcessor)).toBe('sharp');
    // The feature cache keys on the fingerprint, so the two decoders never share cached features.
    expect(a.imageProcessor.fingerprint()).not.toBe(b.imageProcessor.fingerprint());
    const pre = parseExperimentConfig({ model: { pretrained: CLIP_TINY }, data: { dataset: { kind: 'shapes' }, imageDecoder: 'sharp' } });
    expect(decoderOf((await loadPreprocessing(pre.data, pre.model)).imageProcessor)).toBe('sharp');
  });

  it('refuses an unknown decoder naming the key', () => {
    expect(() => parseExperimentConfig({ model: towers, data: { dataset: { kind: 'shapes' }, tokenizer: TOKENIZER, imageDecoder: 'pil' } })).toThrow(/data\.imageDecoder/);
  });
});
