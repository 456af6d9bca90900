import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ConfigError, initBackend } from '@clip-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipPixelProcessor, HubError, loadEncoderFromBytes, loadEncoderFromUrl, tokenizerFromJson, type LoadedEncoder } from '@clip-ts/encoders';
import { ClipImageProcessor, loadEncoderFromDir, loadTokenizer, readJson, readShardIndex } from '@clip-ts/encoders/node';
import { fixtureDir } from './helpers.js';

/** The browser-safe loaders (objects, bytes, URLs) give exactly what the Node (directory) loaders give. */

const TOKENIZER_DIR = fileURLToPath(new URL('./fixtures/tokenizer/', import.meta.url));
const HF = fileURLToPath(new URL('./fixtures/hf/', import.meta.url));
let server: Server;
let baseUrl: string;
let tmp: string;

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'enc-mem-'));
  server = createServer((req, res) => {
    readFile(join(HF, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname))).then(
      (body) => res.end(body),
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(tmp, { recursive: true, force: true });
});

function encodeImages(e: LoadedEncoder): number[] {
  if (e.kind !== 'image') throw new Error('expected an image tower');
  const size = e.config.image_size as number | [number, number]; // the ViT fixtures' (a ResNet config has none)
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  return tf.tidy(() => Array.from(e.encoder.encode(tf.randomUniform([2, 3, h, w], -1, 1, 'float32', 7) as tf.Tensor4D).dataSync()));
}

describe('towers from bytes and URLs', () => {
  it('loadEncoderFromBytes / loadEncoderFromUrl equal loadEncoderFromDir (vit-tiny)', async () => {
    const dir = fixtureDir('vit-tiny');
    const fromDir = await loadEncoderFromDir(dir);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as unknown;
    const fromBytes = loadEncoderFromBytes(config, (await readFile(join(dir, 'model.safetensors'))).buffer.slice(0));
    const fromUrl = await loadEncoderFromUrl(`${baseUrl}/vit-tiny`);
    const want = encodeImages(fromDir);
    expect(encodeImages(fromBytes)).toEqual(want);
    expect(encodeImages(fromUrl)).toEqual(want);
    for (const e of [fromDir, fromBytes, fromUrl]) e.encoder.dispose();
  });

  it('errors name the URL or the given source', async () => {
    await expect(loadEncoderFromUrl(`${baseUrl}/nope`)).rejects.toThrow(CheckpointError);
    await expect(loadEncoderFromUrl(`${baseUrl}/nope`)).rejects.toThrow(`${baseUrl}/nope/config.json: HTTP 404`);
    expect(() => loadEncoderFromBytes({ model_type: 'bert' }, new Uint8Array(0), { configSource: 'picked.json' })).toThrow(
      /picked\.json: unsupported model_type "bert"/,
    );
  });
});

describe('tokenizer from JSON text', () => {
  it('encodes and fingerprints exactly like loadTokenizer; the hash is SHA-256 as before', async () => {
    const text = await readFile(join(TOKENIZER_DIR, 'tokenizer.json'), 'utf8');
    const fromFile = await loadTokenizer(TOKENIZER_DIR);
    const fromText = tokenizerFromJson(text);
    const captions = ['A dog runs on the beach.', 'two children playing football in a park'];
    expect(fromText.encode(captions, 12)).toEqual(fromFile.encode(captions, 12));
    expect(fromText.fingerprint()).toBe(fromFile.fingerprint());
    // The digest node:crypto gave before the browser split: caches keyed on fingerprints stay valid.
    const ref = createHash('sha256').update(text).update('\0').update('{}').digest('hex').slice(0, 16);
    expect(fromText.fingerprint()).toContain(`hf-tokenizer:${ref}:`);
    expect(() => tokenizerFromJson('{"model": ')).toThrow(/tokenizer\.json: invalid JSON/);
  });
});

describe('image pixels without decoding', () => {
  it('ClipPixelProcessor gives the same CHW arrays as ClipImageProcessor on raw pixels', async () => {
    const px = Uint8Array.from({ length: 9 * 7 * 4 }, (_, i) => (i * 37) % 256);
    const a = await new ClipPixelProcessor({ height: 4, width: 5 }).processRaw(px, 9, 7, 4, 'canvas');
    const b = await new ClipImageProcessor({ height: 4, width: 5 }).processRaw(px, 9, 7, 4, 'canvas');
    expect(a).toEqual(b);
    expect(a.length).toBe(3 * 4 * 5);
  });
});

describe('files helper (Node)', () => {
  it('readJson: read / parse / validate errors name the file; optional files may be missing', async () => {
    const cfg = (m: string, o?: { cause?: unknown }) => new ConfigError(m, o);
    const missing = join(tmp, 'missing.json');
    expect(await readJson(missing, { error: cfg, optional: true })).toBeUndefined();
    await expect(readJson(missing, { error: cfg })).rejects.toThrow(`${missing}: cannot read:`);
    const bad = join(tmp, 'bad.json');
    await writeFile(bad, '{');
    await expect(readJson(bad, { error: cfg })).rejects.toThrow(`${bad}: invalid JSON:`);
  });

  it('readShardIndex lists distinct shards and refuses paths', async () => {
    const hub = (m: string, o?: { cause?: unknown }) => new HubError(m, [], o);
    const ok = join(tmp, 'ok.index.json');
    await writeFile(ok, JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's2.safetensors', c: 's1.safetensors' } }));
    expect((await readShardIndex(ok, hub)).shards).toEqual(['s1.safetensors', 's2.safetensors']);
    for (const shard of ['../x.safetensors', 'sub/x.safetensors', '..', 'a\\b']) {
      const f = join(tmp, 'evil.index.json');
      await writeFile(f, JSON.stringify({ weight_map: { w: shard } }));
      await expect(readShardIndex(f, hub)).rejects.toThrow(HubError);
    }
    const noMap = join(tmp, 'nomap.index.json');
    await writeFile(noMap, '{"metadata": {}}');
    await expect(readShardIndex(noMap, hub)).rejects.toThrow(/nomap\.index\.json: invalid index:\nweight_map/);
  });
});
