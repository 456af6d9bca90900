import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { ClipError, ConfigError, DataError, type CaptionTokenizer, type ImageProcessor } from '@clip-ts/core';
import { createShapes, loadCaptionCsvSplits, loadFlickr8k, subset, type ImageCaptionDataset } from '@clip-ts/data';
import { ClipImageProcessor, loadImageProcessor, loadTokenizer, loadTokenizerFiles } from '@clip-ts/encoders/node';
import type { ExperimentConfig } from '../config/schema.js';
import { pretrainedDir, pretrainedPreprocessing } from './pretrained.js';

export interface ExperimentData {
  train: ImageCaptionDataset;
  val: ImageCaptionDataset;
  test: ImageCaptionDataset;
}

function wrap<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ClipError) throw err;
    throw new DataError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** Load the train / val / test caption splits the config names (first N images when data.limit says so). */
export async function loadExperimentData(data: ExperimentConfig['data']): Promise<ExperimentData> {
  const ds = data.dataset;
  let splits: ExperimentData;
  if (ds.kind === 'shapes') {
    const s = wrap('data.dataset (shapes)', () => createShapes(ds.options as Parameters<typeof createShapes>[0]));
    splits = { train: s.train, val: s.val, test: s.test };
  } else {
    const isDir = await stat(ds.root).then(
      (st) => st.isDirectory(),
      () => undefined,
    );
    if (isDir === undefined) throw new DataError(`data.dataset.root: ${ds.root} does not exist`);
    if (ds.kind === 'flickr8k') {
      if (!isDir) throw new DataError(`data.dataset.root: ${ds.root} is a file; flickr8k expects the dataset directory (captions.txt, images/, Flickr_8k.*Images.txt)`);
      const f = wrap(`data.dataset.root ${ds.root} (flickr8k)`, () => loadFlickr8k(ds.root, ds.options as Parameters<typeof loadFlickr8k>[1]));
      splits = { train: f.train, val: f.val, test: f.test };
    } else {
      const all = wrap(`data.dataset.root ${ds.root} (csv)`, () => loadCaptionCsvSplits(ds.root, ds.options as Parameters<typeof loadCaptionCsvSplits>[1]));
      const pick = (name: string, ...alts: string[]) => {
        for (const n of [name, ...alts]) if (all[n]) return all[n];
        throw new DataError(`data.dataset.root ${ds.root}: the CSV has no '${name}' split (its split column has: ${Object.keys(all).join(', ')})`);
      };
      splits = { train: pick('train'), val: pick('val', 'dev', 'validation'), test: pick('test') };
    }
  }
  const limit = data.limit;
  const cut = (d: ImageCaptionDataset, n: number | undefined) =>
    n === undefined || n >= d.length ? d : subset(d, Array.from({ length: n }, (_, i) => i), d.split);
  return { train: cut(splits.train, limit?.train), val: cut(splits.val, limit?.val), test: cut(splits.test, limit?.test) };
}

/**
 * The tokenizer (tokenizer.json or a directory with it) and image processor the config names. With a
 * whole pretrained CLIP (`model`), they come from its repo unless data.* overrides them (see
 * pretrainedPreprocessing).
 */
export async function loadPreprocessing(
  data: ExperimentConfig['data'],
  model?: ExperimentConfig['model'],
): Promise<{ tokenizer: CaptionTokenizer; imageProcessor: ImageProcessor; tokenizerDir?: string; hf?: boolean }> {
  if (model && 'pretrained' in model) return pretrainedPreprocessing(data, await pretrainedDir(model.pretrained));
  if (data.tokenizer === undefined) throw new ConfigError('data.tokenizer: required (a tokenizer.json or a directory holding one) unless model.pretrained provides it');
  const isDir = await stat(data.tokenizer).then(
    (s) => s.isDirectory(),
    () => undefined,
  );
  if (isDir === undefined) throw new ConfigError(`data.tokenizer: ${data.tokenizer} does not exist (give a tokenizer.json or a directory holding one)`);
  const file = data.tokenizer;
  const tokenizer = isDir ? await loadTokenizer(file) : await loadTokenizerFiles(file, path.join(path.dirname(file), 'tokenizer_config.json'));
  const options = { height: data.imageSize ?? 224, width: data.imageSize ?? 224, decoder: data.imageDecoder };
  const imageProcessor = data.imageProcessor ? await loadImageProcessor(data.imageProcessor, options) : new ClipImageProcessor(options);
  return { tokenizer, imageProcessor };
}
