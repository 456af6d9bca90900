import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError, Rng } from '@clip-ts/core';
import { groupCaptions, parseCaptionCsv, parseTokenFile, readNameList, readText } from './captions.js';
import type { TextFileOptions } from './text-file.js';
import type { CaptionRow } from './captions.js';
import { FileCaptionDataset, resolveCaptionItems } from './file-captions.js';
import type { SplitEntry } from './file-captions.js';
import { Flickr8kOptionsSchema } from './schemas.js';
import type { Flickr8kOptions } from './schemas.js';
import { listSome } from './list-some.js';
import { parseOptions } from './options.js';
import { realDir } from './safe-paths.js';
import { defaultWarn } from './warnings.js';

export interface Flickr8k {
  train: FileCaptionDataset;
  /** The official dev split (Flickr_8k.devImages.txt). */
  val: FileCaptionDataset;
  test: FileCaptionDataset;
  /** Files actually used, for logs. */
  captionsFile: string;
  imagesDir: string;
}

const CAPTION_FILES = ['captions.txt', 'Flickr8k.token.txt', 'Flickr8k_text/captions.txt', 'Flickr8k_text/Flickr8k.token.txt'];
const IMAGE_DIRS = ['images', 'Images', 'Flicker8k_Dataset', 'Flickr8k_Dataset', 'Flickr8k_Dataset/Flicker8k_Dataset'];
const SPLIT_NAMES = { train: 'Flickr_8k.trainImages.txt', val: 'Flickr_8k.devImages.txt', test: 'Flickr_8k.testImages.txt' } as const;
type SplitName = keyof typeof SPLIT_NAMES;
const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];

function findFirst(root: string, candidates: readonly string[], isDir: boolean): string | undefined {
  for (const c of candidates) {
    const p = path.join(root, c);
    if (existsSync(p) && statSync(p).isDirectory() === isDir) return p;
  }
  return undefined;
}

/** Read captions in either format: the token file (`name#N<TAB>caption`) or the CSV (`image,caption`). */
export function readFlickrCaptions(file: string, options: TextFileOptions = {}): CaptionRow[] {
  const text = readText(file, 'Flickr8k captions', options);
  const firstLine = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  return /^[^\t,]+#\d+\s/.test(firstLine) ? parseTokenFile(file, text) : parseCaptionCsv(file, text);
}

/**
 * Load Flickr8k from a directory laid out as downloaded (see docs/data.md): captions.txt or
 * Flickr8k.token.txt, the Flickr_8k.*Images.txt split lists, images under images/ or Flicker8k_Dataset/.
 * Everything is checked up front (names, captions, files); images are decoded later by loadImage.
 */
export function loadFlickr8k(root: string, options: Flickr8kOptions = {}): Flickr8k {
  const opts = parseOptions(Flickr8kOptionsSchema, options, 'loadFlickr8k');
  const warn = opts.onWarning ?? defaultWarn;
  const realRoot = realDir(root, 'Flickr8k root');
  const inRoot = (p: string) => path.resolve(realRoot, p);

  const captionsFile = opts.captionsFile ? inRoot(opts.captionsFile) : findFirst(realRoot, CAPTION_FILES, false);
  if (!captionsFile) throw new DataError(`Flickr8k: no captions file in ${realRoot} (looked for ${CAPTION_FILES.join(', ')})`);
  const captions = groupCaptions(readFlickrCaptions(captionsFile, { invalidUtf8: opts.invalidUtf8, warn }), captionsFile, warn);

  const imagesGiven = opts.imagesDir ? inRoot(opts.imagesDir) : findFirst(realRoot, IMAGE_DIRS, true);
  if (!imagesGiven) throw new DataError(`Flickr8k: no image directory in ${realRoot} (looked for ${IMAGE_DIRS.join(', ')})`);
  const imagesDir = realDir(imagesGiven, 'Flickr8k images');

  const entries = splitEntries(realRoot, opts, captionsFile, captions.keys(), warn);
  const sets = {} as Record<SplitName, FileCaptionDataset>;
  for (const split of SPLITS) {
    const items = resolveCaptionItems({
      label: `Flickr8k ${split} split`,
      entries: entries[split],
      captions,
      captionsFile,
      realImagesDir: imagesDir,
      onMissing: opts.onMissing,
      warn,
    });
    sets[split] = new FileCaptionDataset('flickr8k', split, items, opts.onBadImage);
  }
  return { ...sets, captionsFile, imagesDir };
}

function splitEntries(
  realRoot: string,
  opts: ReturnType<typeof Flickr8kOptionsSchema.parse>,
  captionsFile: string,
  captioned: Iterable<string>,
  warn: (m: string) => void,
): Record<SplitName, SplitEntry[]> {
  const files = {} as Record<SplitName, string | undefined>;
  for (const s of SPLITS) {
    const given = opts.splitFiles?.[s];
    files[s] = given ? path.resolve(realRoot, given) : findFirst(realRoot, [SPLIT_NAMES[s], `Flickr8k_text/${SPLIT_NAMES[s]}`], false);
  }
  const missing = SPLITS.filter((s) => files[s] === undefined || !existsSync(files[s] as string));
  const out = {} as Record<SplitName, SplitEntry[]>;
  if (missing.length === 0) {
    for (const s of SPLITS) {
      const file = files[s] as string;
      out[s] = readNameList(file, warn).map((e) => ({ name: e.name, where: `${file}:${e.line}` }));
    }
    reportOverlaps(out, warn);
    return out;
  }
  if (!opts.randomSplit) {
    const names = missing.map((s) => (opts.splitFiles?.[s] ? path.resolve(realRoot, opts.splitFiles[s] as string) : SPLIT_NAMES[s]));
    throw new DataError(
      `Flickr8k: split file(s) not found in ${realRoot}: ${names.join(', ')}. ` +
        `Pass randomSplit: { seed } to split the captioned images at random instead.`,
    );
  }
  // Sorted first so the split depends only on the set of names and the seed, not on file order.
  const names = [...captioned].sort();
  const { seed, val, test } = opts.randomSplit;
  if (val + test >= names.length) {
    throw new DataError(`Flickr8k: randomSplit val+test = ${val + test} leaves no training images (${names.length} captioned)`);
  }
  new Rng(seed).shuffle(names);
  const entry = (name: string): SplitEntry => ({ name, where: captionsFile });
  out.test = names.slice(0, test).map(entry);
  out.val = names.slice(test, test + val).map(entry);
  out.train = names.slice(test + val).map(entry);
  return out;
}

function reportOverlaps(out: Record<SplitName, SplitEntry[]>, warn: (m: string) => void): void {
  const seen = new Map<string, SplitName>();
  const dups: string[] = [];
  for (const s of SPLITS) {
    for (const e of out[s]) {
      const prev = seen.get(e.name);
      if (prev !== undefined) dups.push(`${e.name} (${prev} and ${s})`);
      else seen.set(e.name, s);
    }
  }
  if (dups.length > 0) warn(`Flickr8k: ${dups.length} image(s) listed in more than one split: ${listSome(dups)}`);
}
