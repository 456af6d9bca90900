import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '@clip-ts/core';
import type { ImageProcessor } from '@clip-ts/core';
import { processFileChecked } from './errors.js';
import { ImageFolderOptionsSchema } from './schemas.js';
import type { ImageFolderOptions } from './schemas.js';
import type { ClassificationDataset, OnBadImage } from './types.js';
import { checkIndex } from './check-index.js';
import { hashStrings } from './fingerprint.js';
import { listSome } from './list-some.js';
import { parseOptions } from './options.js';
import { promptName } from './prompt-name.js';
import { realDir, realInside } from './safe-paths.js';
import { defaultWarn } from './warnings.js';

interface FolderItem {
  key: string;
  file: string;
  label: number;
}

/** What loadImageFolder hands an ImageFolderDataset. */
interface ImageFolderDatasetOptions {
  name: string;
  split: string;
  items: readonly FolderItem[];
  /** Prompt-ready class names, in label order. */
  classNames: readonly string[];
  /** Directory names, in label order. */
  classDirs: readonly string[];
  onBadImage?: OnBadImage;
}

/** One subdirectory per class (sorted by name, like torchvision's ImageFolder); images found recursively. */
export class ImageFolderDataset implements ClassificationDataset {
  private fp: string | undefined;

  readonly name: string;
  readonly split: string;
  readonly classNames: readonly string[];
  /** Directory names, in label order. */
  readonly classDirs: readonly string[];
  readonly onBadImage: OnBadImage;
  private readonly items: readonly FolderItem[];

  constructor(options: ImageFolderDatasetOptions) {
    this.name = options.name;
    this.split = options.split;
    this.items = options.items;
    this.classNames = options.classNames;
    this.classDirs = options.classDirs;
    this.onBadImage = options.onBadImage ?? 'error';
  }

  get length(): number {
    return this.items.length;
  }

  private item(index: number): FolderItem {
    checkIndex(index, this.items.length, `${this.name}/${this.split}`);
    return this.items[index] as FolderItem;
  }

  label(index: number): number {
    return this.item(index).label;
  }

  imageKey(index: number): string {
    return this.item(index).key;
  }

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
    this.fp ??= hashStrings([this.name, this.split, ...this.classDirs, ...this.items.map((i) => `${i.key}\t${i.label}`)]);
    return this.fp;
  }
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A classification set from `root/<class>/**\/*.{jpg,jpeg,png,webp}`. Class names for prompts are the
 * directory names with underscores as spaces. Hidden files are ignored; empty class directories are
 * kept as classes and reported.
 */
export function loadImageFolder(root: string, options: ImageFolderOptions = {}): ImageFolderDataset {
  const opts = parseOptions(ImageFolderOptionsSchema, options, 'loadImageFolder');
  const warn = opts.onWarning ?? defaultWarn;
  const realRoot = realDir(root, 'image folder');
  const exts = new Set(opts.extensions);
  const classDirs = readdirSync(realRoot)
    .filter((n) => !n.startsWith('.') && statSync(path.join(realRoot, n)).isDirectory())
    .sort(byName);
  if (classDirs.length === 0) throw new DataError(`image folder ${realRoot}: no class subdirectories`);
  const items: FolderItem[] = [];
  const empty: string[] = [];
  const seenFiles = new Map<string, string>();
  const dups: string[] = [];
  const visited = new Set<string>();
  const statOf = (p: string) => {
    try {
      return statSync(p);
    } catch (err) {
      throw new DataError(`image folder: cannot read ${p}: ${(err as Error).message}`, { cause: err });
    }
  };
  classDirs.forEach((dir, label) => {
    const before = items.length;
    const walk = (rel: string) => {
      const real = realInside(realRoot, path.join(realRoot, rel), 'image folder') as string;
      if (visited.has(real)) return; // a directory reached twice through symlinks
      visited.add(real);
      for (const n of readdirSync(real).sort(byName)) {
        if (n.startsWith('.')) continue;
        const childRel = `${rel}/${n}`;
        const child = path.join(realRoot, childRel);
        const st = statOf(child);
        if (st.isDirectory()) walk(childRel);
        else if (st.isFile() && exts.has(path.extname(n).toLowerCase())) {
          const file = realInside(realRoot, child, 'image folder') as string;
          const prev = seenFiles.get(file);
          if (prev !== undefined) {
            dups.push(`${childRel} (same file as ${prev})`);
            continue;
          }
          seenFiles.set(file, childRel);
          items.push({ key: childRel, file, label });
        }
      }
    };
    walk(dir);
    if (items.length === before) empty.push(dir);
  });
  if (dups.length > 0) warn(`image folder ${realRoot}: ${dups.length} duplicate image(s) ignored: ${listSome(dups)}`);
  if (items.length === 0) throw new DataError(`image folder ${realRoot}: no images (extensions ${[...exts].join(', ')}); the split is empty`);
  if (empty.length > 0) warn(`image folder ${realRoot}: ${empty.length} class director(ies) with no images: ${listSome(empty)}`);
  const split = opts.split ?? path.basename(realRoot);
  return new ImageFolderDataset({ name: 'imagefolder', split, items, classNames: classDirs.map(promptName), classDirs, onBadImage: opts.onBadImage });
}
