/**
 * The page's use of `CLIP` (@clip-ts/encoders): the page embeds each image once and then classifies and
 * searches on the stored embeddings as labels and queries change, so this wrapper adds zero-shot and
 * similarity over `Embeddings` (plain numbers) next to CLIP's own calls, plus the browser inputs
 * (File/Blob → CLIP's encoded-bytes seam; <img>/ImageBitmap/ImageData → decoded pixels).
 */
import { ValueError } from '@clip-ts/core';
import { CLIP, Embeddings, decodeBrowserImage, describeBrowserImage, type BrowserImageInput, type BlobLike, type CLIPImage } from '@clip-ts/encoders';

export { Embeddings };

export interface LoadProgress {
  file: string;
  loaded: number;
  total: number | undefined;
}

export interface LabelScore {
  label: string;
  probability: number;
}

export interface TemplateOptions {
  /** Prompt templates with `{}` for the label; several are ensembled (mean of normalised embeddings). */
  templates?: readonly string[];
}

const isBlob = (x: BrowserImageInput): x is BlobLike => typeof (x as BlobLike).arrayBuffer === 'function';

/** A File/Blob as encoded bytes (CLIP decodes them in the browser); anything else as decoded RGB pixels. */
async function toCLIPImage(input: BrowserImageInput): Promise<CLIPImage> {
  if (isBlob(input)) return new Uint8Array(await input.arrayBuffer());
  const img = await decodeBrowserImage(input);
  return { data: img.data, width: img.width, height: img.height, channels: 3 };
}

function dot(a: Embeddings, i: number, b: Embeddings, j: number): number {
  let s = 0;
  for (let k = 0; k < a.dim; k++) s += (a.data[i * a.dim + k] as number) * (b.data[j * b.dim + k] as number);
  return s;
}

export class PageCLIP {
  private constructor(readonly clip: CLIP) {}

  /** Load `<base>/` (config.json, model.safetensors, tokenizer and preprocessor files). The caller disposes it. */
  static async fromUrl(base: string, options: { onProgress?: (p: LoadProgress) => void } = {}): Promise<PageCLIP> {
    const url = new URL(base.endsWith('/') ? base : `${base}/`, globalThis.location?.href).href;
    const clip = await CLIP.fromPretrained(url, options.onProgress ? { onDownloadProgress: options.onProgress } : {});
    return new PageCLIP(clip);
  }

  get kind(): string {
    return this.clip.kind;
  }

  get dim(): number {
    return this.clip.model.projectionDim;
  }

  /** The multiplier of cosines in CLIP's logits (exp(logit_scale), capped at 100 as core's clipLogits does). */
  get scale(): number {
    return Math.min(this.clip.logitScale, 100);
  }

  /** Decode + preprocess one image in the browser: CHW float32 pixel_values (a new array). */
  async pixelValues(input: BrowserImageInput): Promise<Float32Array> {
    const img = await decodeBrowserImage(input);
    return this.clip.imageProcessor.processRawSync(img.data, img.width, img.height, 3, describeBrowserImage(input));
  }

  /** L2-normalised image embeddings, in order. Unreadable images → DataError. */
  async embedImages(inputs: readonly BrowserImageInput[], options: { onProgress?: (done: number, total: number) => void } = {}): Promise<Embeddings> {
    const images = await Promise.all(inputs.map(toCLIPImage));
    return this.clip.embedImages(images, options.onProgress ? { onProgress: options.onProgress } : {});
  }

  /** L2-normalised text embeddings; with templates, CLIP's prompt ensemble per text. */
  async embedTexts(texts: readonly string[], options: TemplateOptions = {}): Promise<Embeddings> {
    if (!options.templates) return this.clip.embedTexts(texts);
    const classifier = this.clip.classifier(texts, { templates: options.templates });
    try {
      return new Embeddings((await classifier.classEmbeddings.data()) as Float32Array, texts.length, this.dim);
    } finally {
      classifier.dispose();
    }
  }

  /** Per image row: every label with its probability (softmax of scale · cosine), best first. */
  async zeroShot(images: Embeddings, labels: readonly string[], options: TemplateOptions = {}): Promise<LabelScore[][]> {
    if (labels.length === 0) throw new ValueError('zeroShot: the label list is empty');
    const text = await this.embedTexts(labels, { templates: options.templates ?? ['a photo of a {}.'] });
    const scale = this.scale;
    return Array.from({ length: images.rows }, (_, i) => {
      const logits = labels.map((_l, j) => scale * dot(images, i, text, j));
      const max = Math.max(...logits);
      const e = logits.map((v) => Math.exp(v - max));
      const sum = e.reduce((a, b) => a + b, 0);
      return labels.map((label, j) => ({ label, probability: (e[j] as number) / sum })).sort((a, b) => b.probability - a.probability);
    });
  }

  /** [images × texts] scale · cosine (the logits CLIP's softmax sees). */
  async similarity(images: Embeddings, texts: readonly string[]): Promise<number[][]> {
    const text = await this.clip.embedTexts(texts);
    const scale = this.scale;
    return Array.from({ length: images.rows }, (_, i) => texts.map((_t, j) => scale * dot(images, i, text, j)));
  }

  dispose(): void {
    this.clip.dispose();
  }
}
