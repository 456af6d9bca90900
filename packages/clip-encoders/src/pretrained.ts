import { join } from 'node:path';
import { exists } from './files.js';
import type { LoadEncoderOptions, LoadedEncoder } from './hf-load.js';
import { loadEncoderFromDir } from './hf-load-dir.js';
import { resolvePretrained, type ResolveOptions } from './hub.js';
import { loadImageProcessor, type ClipImageProcessor } from './image-decode.js';
import type { ImageProcessorOptions } from './image-processor.js';
import type { HFTokenizer, TokenizerLoadOptions } from './tokenizer.js';
import { loadTokenizer } from './tokenizer-files.js';

export interface FromPretrainedOptions extends ResolveOptions, LoadEncoderOptions {
  /** Overrides for the image processor (e.g. CLIP mean/std for a ViT whose config says 0.5). */
  imageProcessor?: ImageProcessorOptions;
  tokenizer?: TokenizerLoadOptions;
}

/** A loaded tower with the preprocessing that goes with it. */
export type Pretrained = LoadedEncoder & {
  /** The local directory the files came from. */
  dir: string;
  /** Text towers: the repo's tokenizer.json, when it has one. */
  tokenizer?: HFTokenizer;
  /** Image towers: from preprocessor_config.json (defaults when absent) plus `imageProcessor` overrides. */
  imageProcessor?: ClipImageProcessor;
};

/**
 * resolvePretrained (local dir, cache or download) → loadEncoderFromDir → the matching preprocessing.
 * e.g. `fromPretrained('distilbert-base-uncased')`, `fromPretrained('google/vit-base-patch16-224-in21k')`.
 * The caller owns (and disposes) `encoder`.
 */
export async function fromPretrained(idOrPath: string, opts: FromPretrainedOptions = {}): Promise<Pretrained> {
  const dir = await resolvePretrained(idOrPath, opts);
  const loaded = await loadEncoderFromDir(dir, opts);
  try {
    if (loaded.kind === 'text') {
      const hasTokenizer = await exists(join(dir, 'tokenizer.json'));
      return { ...loaded, dir, tokenizer: hasTokenizer ? await loadTokenizer(dir, opts.tokenizer) : undefined };
    }
    return { ...loaded, dir, imageProcessor: await loadImageProcessor(dir, opts.imageProcessor) };
  } catch (err) {
    loaded.encoder.dispose();
    throw err;
  }
}
