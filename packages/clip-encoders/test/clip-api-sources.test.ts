import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, CLIPModel, ConfigError, DataError, initBackend } from '@clip-ts/core';
import { loadCLIPModel, saveCLIPModel } from '@clip-ts/core/node';
import { CLIP, DEFAULT_MAX_LENGTH, HubError, preprocessorConfigFor, TokenizerError, toPixelTensor, toTensors } from '@clip-ts/encoders';
import { loadImageProcessor, loadTokenizer } from '@clip-ts/encoders/node';
import { fixtureDir } from './helpers.js';
import { platform as browser } from '../src/platform/browser.js';
import { loadCLIPParts } from '../src/clip-checkpoint.js';

/**
 * Where CLIP.fromPretrained reads from (dir, Hub id, URL base) and what (HF CLIP repos, clip-ts
 * checkpoints), and its errors for checkpoints that are missing or incomplete.
 */

const HF = fixtureDir('clip-tiny');
const IMAGE = join(HF, 'image_2.jpg');
const TOKENIZER = fixtureDir('../tokenizer/tokenizer.json');
const COMMIT = 'c11b000000000000000000000000000000000001';

/** A clip-ts checkpoint as a training run writes it (saveCLIPModel + saveCheckpointAssets' three files). */
async function writeClipTsCheckpoint(dir: string, maxLength?: number): Promise<void> {
  const model = CLIPModel.fromConfig(
    {
      model_type: 'clip-ts',
      projection_dim: 8,
      vision_config: { model_type: 'vit', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 },
      text_config: { model_type: 'distilbert', dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 32 },
    },
    { seed: 3 },
  );
  try {
    await saveCLIPModel(model, dir);
  } finally {
    model.dispose();
  }
  await copyFile(TOKENIZER, join(dir, 'tokenizer.json'));
  if (maxLength !== undefined) await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: maxLength, do_lower_case: true }));
  await writeFile(join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessorConfigFor({ height: 16, width: 16 })));
}

let tmp: string;
let server: Server;
let base: string;
const requests: string[] = [];

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'clip-api-'));
  const files = new Map<string, Buffer>();
  for (const f of await readdir(HF)) files.set(f, await readFile(join(HF, f)));
  // /{org}/{name}/resolve/{rev}/{file} as the Hub serves it, and /static/{file} as any static server would.
  server = createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(url);
    const m = /^\/(?:test\/clip-tiny\/resolve\/main|static)\/([^/]+)$/.exec(url);
    const body = m ? files.get(decodeURIComponent(m[1] as string)) : undefined;
    if (!body) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'x-repo-commit': COMMIT }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(tmp, { recursive: true, force: true });
});

/** Image and text embeddings of the same inputs, to compare two loads of one checkpoint. */
async function fingerprint(clip: CLIP): Promise<number[]> {
  const img = await clip.embedImages([IMAGE]);
  const txt = await clip.embedTexts(['a photo of a cat.', 'Two dogs playing in the snow!']);
  return [...img.data, ...txt.data];
}

describe('CLIP.fromPretrained sources', () => {
  it('a Hub id goes through the Hub client (download into its cache, then offline from it)', async () => {
    const cacheDir = join(tmp, 'hub');
    const fromDir = await CLIP.fromPretrained(HF);
    const want = await fingerprint(fromDir);
    fromDir.dispose();
    const hub = await CLIP.fromPretrained('test/clip-tiny', { endpoint: base, cacheDir, progress: false, offline: false });
    try {
      expect(hub.source).toBe(join(cacheDir, 'models--test--clip-tiny', 'snapshots', COMMIT));
      expect(hub.maxLength).toBe(77);
      expect(await fingerprint(hub)).toEqual(want);
    } finally {
      hub.dispose();
    }
    requests.length = 0;
    const offline = await CLIP.fromPretrained('test/clip-tiny', { endpoint: base, cacheDir, offline: true });
    offline.dispose();
    expect(requests).toEqual([]);
    await expect(CLIP.fromPretrained('test/other', { endpoint: base, cacheDir, offline: true })).rejects.toThrow(HubError);
  });

  it('a URL base is fetched (with download progress) and gives the same model', async () => {
    const fromDir = await CLIP.fromPretrained(HF);
    const want = await fingerprint(fromDir);
    fromDir.dispose();
    const seen = new Map<string, { loaded: number; total: number | undefined }>();
    const clip = await CLIP.fromPretrained(`${base}/static`, { onDownloadProgress: (p) => seen.set(p.file, p) });
    try {
      expect(clip.kind).toBe('clip');
      expect([clip.imageProcessor.height, clip.maxLength]).toEqual([30, 77]);
      expect(await fingerprint(clip)).toEqual(want);
      const size = (await readFile(join(HF, 'model.safetensors'))).length;
      expect(seen.get('model.safetensors')).toEqual({ file: 'model.safetensors', loaded: size, total: size });
    } finally {
      clip.dispose();
    }
    await expect(CLIP.fromPretrained(`${base}/nothing`)).rejects.toThrow(/nothing\/: not a checkpoint: it has no config.json/);
  });

  it('a clip-ts checkpoint loads as the old loader read it: weights, tokenizer at its caption length, processor', async () => {
    const dir = join(tmp, 'clip-ts');
    await writeClipTsCheckpoint(dir, 16);
    const clip = await CLIP.fromPretrained(dir);
    // The parts read one by one, as train's loadCheckpoint did.
    const model = await loadCLIPModel(dir);
    const tokenizer = await loadTokenizer(dir);
    const processor = await loadImageProcessor(dir);
    try {
      expect([clip.kind, clip.maxLength, clip.imageProcessor.height]).toEqual(['clip-ts', 16, 16]);
      const texts = ['a photo of a cat.', 'Two dogs playing in the snow, a long caption that the caption length cuts off'];
      const ids = toTensors(tokenizer.encode(texts, 16));
      const pixels = toPixelTensor([await processor.processFile(IMAGE)], 16, 16);
      const oldImg = model.encodeImages(pixels);
      const oldTxt = model.encodeTexts(ids);
      expect(Array.from((await clip.embedImages([IMAGE])).data)).toEqual(Array.from(await oldImg.data()));
      expect(Array.from((await clip.embedTexts(texts)).data)).toEqual(Array.from(await oldTxt.data()));
      tf.dispose([ids.inputIds, ids.attentionMask, pixels, oldImg, oldTxt]);
      const [top] = await clip.zeroShot([IMAGE], ['cat', 'dog']);
      expect(top?.labels.slice().sort()).toEqual(['cat', 'dog']);
    } finally {
      clip.dispose();
      model.dispose();
    }
    // No tokenizer_config.json, or HF's 512: the reference's caption length.
    const bare = join(tmp, 'clip-ts-bare');
    await writeClipTsCheckpoint(bare);
    const b = await CLIP.fromPretrained(bare);
    expect(b.maxLength).toBe(DEFAULT_MAX_LENGTH);
    b.dispose();
    await writeFile(join(bare, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 512 }));
    const c = await CLIP.fromPretrained(bare);
    expect(c.maxLength).toBe(DEFAULT_MAX_LENGTH);
    c.dispose();
    await writeFile(join(bare, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 'long' }));
    await expect(CLIP.fromPretrained(bare)).rejects.toThrow(TokenizerError);
    await expect(CLIP.fromPretrained(bare)).rejects.toThrow(/tokenizer_config\.json.*\n?.*model_max_length/);
  });

  it('missing or incomplete checkpoints are typed errors that say what is wrong', async () => {
    const before = tf.memory().numTensors;
    await expect(CLIP.fromPretrained(join(tmp, 'absent'))).rejects.toThrow(/absent: the checkpoint directory does not exist/);
    await expect(CLIP.fromPretrained('./runs/x/best')).rejects.toThrow(CheckpointError);
    await expect(CLIP.fromPretrained(IMAGE)).rejects.toThrow(/is a file/);
    const empty = join(tmp, 'empty');
    await mkdir(empty, { recursive: true });
    await expect(CLIP.fromPretrained(empty)).rejects.toThrow(/no config\.json/);
    // A repo with only the PyTorch pickle: refused, never unpickled, with what to do.
    const pickle = join(tmp, 'pickle');
    await mkdir(pickle);
    for (const f of ['config.json', 'tokenizer.json']) await copyFile(join(HF, f), join(pickle, f));
    await writeFile(join(pickle, 'pytorch_model.bin'), 'not really a pickle');
    await expect(CLIP.fromPretrained(pickle)).rejects.toThrow(/only pytorch_model\.bin.*does not load.*safetensors/s);
    // No tokenizer.json: named before any weight is read.
    const noTok = join(tmp, 'no-tokenizer');
    await writeClipTsCheckpoint(noTok, 16);
    await rm(join(noTok, 'tokenizer.json'));
    await expect(CLIP.fromPretrained(noTok)).rejects.toThrow(/no tokenizer\.json; copy/);
    // A single tower is not a CLIP.
    await expect(CLIP.fromPretrained(fixtureDir('vit-tiny'))).rejects.toThrow(/model_type "vit" is not a whole CLIP model/);
    // Missing weights: the model built for them is freed.
    const noWeights = join(tmp, 'no-weights');
    await writeClipTsCheckpoint(noWeights, 16);
    await rm(join(noWeights, 'model.safetensors'));
    await expect(CLIP.fromPretrained(noWeights)).rejects.toThrow(CheckpointError);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the browser platform fetches a Hub id from its resolve URLs; it decodes encoded images with createImageBitmap (absent here: a DataError)', async () => {
    const files = await browser.open('test/clip-tiny', { endpoint: base });
    expect(files.name).toBe(`${base}/test/clip-tiny/resolve/main/`);
    const parts = await loadCLIPParts(files);
    try {
      expect([parts.kind, parts.tokenizer.maxLength, parts.imageProcessor.shortestEdge]).toEqual(['clip', 77, 30]);
    } finally {
      parts.model.dispose();
    }
    const processor = browser.imageProcessor({});
    await expect(processor.processFile('cat.jpg')).rejects.toThrow(DataError);
    // Decoding itself is tested in Chromium (examples/web/test/browser.test.ts); Node has no createImageBitmap.
    await expect(processor.processBuffer(new Uint8Array(4), 'image 0')).rejects.toThrow(/image 0: this environment has no createImageBitmap/);
    await expect(browser.open('not an id', {})).rejects.toThrow(ConfigError);
  });
});
