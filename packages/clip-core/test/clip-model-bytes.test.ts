import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIPModel, CheckpointError, ConfigError, SafetensorsError, createImageEncoder, createTextEncoder, initBackend } from '../src/index.js';
import { saveCLIPModel } from '../src/node.js';
import { IMAGE_CONFIG, TEXT_CONFIG, fakeBatch, registerFakeTowers } from './helpers/fake-towers.js';

/** The in-memory (browser-safe) checkpoint API: toBytes / fromBytes / fromUrl. */

let root: string;
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  await initBackend('cpu');
  registerFakeTowers();
  root = await mkdtemp(join(tmpdir(), 'clip-bytes-'));
  // A static file server on loopback, like a checkpoint directory put on a CDN.
  server = createServer((req, res) => {
    const file = join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    readFile(file).then(
      (body) => res.end(body),
      () => {
        res.statusCode = 404;
        res.end('not found');
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

function makeModel(seed: number): CLIPModel {
  const model = new CLIPModel({
    imageEncoder: createImageEncoder(IMAGE_CONFIG, { seed: seed + 1 }),
    textEncoder: createTextEncoder(TEXT_CONFIG, { seed: seed + 2 }),
    projectionDim: 8,
    head: 'mlp',
    seed,
  });
  // Away from the init, so a load that silently skipped a key would show.
  tf.tidy(() => model.namedVariables().forEach((v) => v.variable.assign(tf.add(v.variable, 0.01 * (seed + 1)))));
  return model;
}

function expectSameModel(a: CLIPModel, b: CLIPModel): void {
  const batch = fakeBatch(3);
  const pairs: Array<[tf.Tensor, tf.Tensor]> = [
    [a.encodeImages(batch.pixelValues), b.encodeImages(batch.pixelValues)],
    [a.encodeTexts(batch), b.encodeTexts(batch)],
  ];
  for (const [x, y] of pairs) expect(Array.from(y.dataSync())).toEqual(Array.from(x.dataSync()));
  expect(b.logitScale.dataSync()[0]).toBe(a.logitScale.dataSync()[0]);
  expect(b.getConfig()).toEqual(a.getConfig());
  tf.dispose(pairs.flat());
  tf.dispose(Object.values(batch));
}

describe('CLIPModel in memory', () => {
  it('toBytes → fromBytes round trip (config as text or object, weights as Uint8Array or ArrayBuffer)', async () => {
    const model = makeModel(3);
    const bytes = await model.toBytes({ note: 'x' });
    expect(JSON.parse(bytes.config)).toEqual(model.getConfig());
    const before = tf.memory().numTensors;
    const a = CLIPModel.fromBytes(bytes, { seed: 42 });
    const copy = bytes.weights.slice().buffer;
    const b = CLIPModel.fromBytes({ config: JSON.parse(bytes.config) as object, weights: copy });
    expectSameModel(model, a);
    expectSameModel(model, b);
    a.dispose();
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('toBytes gives exactly the files saveCLIPModel writes', async () => {
    const model = makeModel(5);
    const dir = join(root, 'same');
    await saveCLIPModel(model, dir, { epoch: '2' });
    const bytes = await model.toBytes({ epoch: '2' });
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(bytes.config);
    expect(new Uint8Array(await readFile(join(dir, 'model.safetensors')))).toEqual(bytes.weights);
    model.dispose();
  });

  it('fromBytes names its sources in errors and leaks nothing', async () => {
    const model = makeModel(1);
    const good = await model.toBytes();
    model.dispose();
    const before = tf.memory().numTensors;
    const opts = { configSource: 'mem:config', weightsSource: 'mem:weights' };
    expect(() => CLIPModel.fromBytes({ ...good, config: '{"model_type": ' }, opts)).toThrow(/mem:config: cannot parse/);
    const badConfig = JSON.stringify({ ...(JSON.parse(good.config) as object), projection_dim: -1 });
    expect(() => CLIPModel.fromBytes({ ...good, config: badConfig }, opts)).toThrow(ConfigError);
    expect(() => CLIPModel.fromBytes({ ...good, weights: new Uint8Array([1, 2, 3]) }, opts)).toThrow(SafetensorsError);
    expect(() => CLIPModel.fromBytes({ ...good, weights: new Uint8Array([1, 2, 3]) }, opts)).toThrow(/mem:weights: file is 3 bytes/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('CLIPModel.fromUrl', () => {
  it('loads a checkpoint directory served over HTTP', async () => {
    const model = makeModel(7);
    await saveCLIPModel(model, join(root, 'served'));
    const viaSlash = await CLIPModel.fromUrl(`${baseUrl}/served/`);
    const viaUrl = await CLIPModel.fromUrl(new URL(`${baseUrl}/served`));
    expectSameModel(model, viaSlash);
    expectSameModel(model, viaUrl);
    viaSlash.dispose();
    viaUrl.dispose();
    model.dispose();
  });

  it('a missing file or an unreachable server → CheckpointError naming the URL', async () => {
    const err = await CLIPModel.fromUrl(`${baseUrl}/nothing-here`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toBe(`${baseUrl}/nothing-here/config.json: HTTP 404 Not Found`);
    const refused = (): Promise<Response> => Promise.reject(new Error('ECONNREFUSED'));
    await expect(CLIPModel.fromUrl('http://127.0.0.1:9/x', { fetch: refused })).rejects.toThrow(
      /http:\/\/127\.0\.0\.1:9\/x\/config\.json: cannot fetch: ECONNREFUSED/,
    );
  });
});
