import { DataError } from '@clip-ts/core';
import type { ImageProcessor } from '@clip-ts/core';
import type { CaptionGroup } from './captions.js';
import { processFileChecked } from './errors.js';
import type { ImageCaptionDataset, OnBadImage, OnMissing, WarningSink } from './types.js';
import { checkIndex } from './check-index.js';
import { hashStrings } from './fingerprint.js';
import { listSome } from './list-some.js';
import { resolveInside } from './safe-paths.js';

export interface CaptionItem {
  /** Image name relative to the images directory, `/`-separated. */
  key: string;
  /** Real absolute path of the image file. */
  file: string;
  captions: readonly string[];
}

/** Image–caption pairs backed by image files on disk (Flickr8k, caption CSVs). */
export class FileCaptionDataset implements ImageCaptionDataset {
  private fp: string | undefined;

  constructor(
    readonly name: string,
    readonly split: string,
    private readonly items: readonly CaptionItem[],
    readonly onBadImage: OnBadImage = 'error',
  ) {}

  get length(): number {
    return this.items.length;
  }

  private item(index: number): CaptionItem {
    checkIndex(index, this.items.length, `${this.name}/${this.split}`);
    return this.items[index] as CaptionItem;
  }

  imageKey(index: number): string {
    return this.item(index).key;
  }

  captions(index: number): readonly string[] {
    return this.item(index).captions;
  }

  /** Absolute path of the image file. */
  imagePath(index: number): string {
    return this.item(index).file;
  }

  /** What loadImage decodes (lets loaders decode batches with processor.processFiles). */
  imageFile(index: number): string {
    return this.item(index).file;
  }

  loadImage(index: number, processor: ImageProcessor): Promise<Float32Array> {
    return processFileChecked(processor, this.item(index).file);
  }

  fingerprint(): string {
    this.fp ??= hashStrings([this.name, this.split, ...this.items.flatMap((it) => [it.key, ...it.captions])]);
    return this.fp;
  }
}

export interface SplitEntry {
  name: string;
  /** `file:line` the name came from. */
  where: string;
}

/**
 * Match a split's image names with their captions and files. Names without a caption or without a file
 * are an error listing them, or (onMissing 'skip') dropped and counted in a warning. An empty result is
 * an error. Files are resolved inside `realImagesDir` (symlinks out of it are errors naming the line).
 */
export function resolveCaptionItems(args: {
  label: string;
  entries: readonly SplitEntry[];
  captions: ReadonlyMap<string, CaptionGroup>;
  captionsFile: string;
  realImagesDir: string;
  onMissing: OnMissing;
  warn: WarningSink;
}): CaptionItem[] {
  const { label, entries, captions, captionsFile, realImagesDir, onMissing, warn } = args;
  const items: CaptionItem[] = [];
  const noCaption: string[] = [];
  const noFile: string[] = [];
  for (const e of entries) {
    const group = captions.get(e.name);
    const file = resolveInside(realImagesDir, e.name, e.where);
    if (!group) noCaption.push(`${e.name} (${e.where})`);
    if (file === null) noFile.push(`${e.name} (${e.where})`);
    if (group && file !== null) items.push({ key: e.name.replace(/\\/g, '/'), file, captions: group.captions });
  }
  const problems: string[] = [];
  if (noCaption.length > 0) problems.push(`${noCaption.length} image(s) with no caption in ${captionsFile}: ${listSome(noCaption)}`);
  if (noFile.length > 0) problems.push(`${noFile.length} image(s) with no file under ${realImagesDir}: ${listSome(noFile)}`);
  if (problems.length > 0) {
    if (onMissing === 'error') {
      throw new DataError(`${label}: ${problems.join('; ')} (pass onMissing: 'skip' to skip them)`);
    }
    warn(`${label}: skipped ${entries.length - items.length} image(s): ${problems.join('; ')}`);
  }
  if (items.length === 0) throw new DataError(`${label}: the split is empty`);
  return items;
}
