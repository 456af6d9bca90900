import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { ClipError } from '@clip-ts/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubError } from '../src/errors.js';
import { resolvePretrained } from '../src/hub.js';
import { fromPretrained } from '../src/pretrained.js';
import { CLIP_MEAN } from '../src/image-processor.js';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@clip-ts/core';

/**
 * A loopback stand-in for the Hub: serves `repos[id][file]` at /{id}/resolve/{rev}/{file} with Range
 * support and X-Repo-Commit, logs every request, and can cut a response off after N bytes.
 */
interface Logged {
  url: string;
  range: string | undefined;
  status: number;
}
const COMMIT = 'c0ffee0000000000000000000000000000000001';
const repos = new Map<string, Map<string, Buffer>>();
const log: Logged[] = [];
/** file name → bytes after which the next response for it is cut (socket destroyed); one-shot. */
const cutAfter = new Map<string, number>();
let ignoreRange = false;
/** file name → how many more requests for it get HTTP 503 before it is served. */
const failTimes = new Map<string, number>();
/** file name → bytes after which the response stalls (open, no more data); one-shot. */
const stallAfter = new Map<string, number>();
/** Arrival time (ms) of each logged request, parallel to `log`. */
const times: number[] = [];
/** Origin of a second loopback server (the 'CDN') that org/redirected's weights redirect to. */
let redirectTo: string | undefined;
let cdn: Server;
let server: Server;
let endpoint: string;
let cache: string;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '';
  const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
  const range = req.headers.range;
  const files = m ? repos.get(m[1] as string) : undefined;
  const body = m && files ? files.get(decodeURIComponent(m[3] as string)) : undefined;
  if (!m || !body) {
    log.push({ url, range, status: 404 });
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
    return;
  }
  const file = decodeURIComponent(m[3] as string);
  const fails = failTimes.get(file) ?? 0;
  if (fails > 0) {
    failTimes.set(file, fails - 1);
    log.push({ url, range, status: 503 });
    times.push(performance.now());
    res.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable');
    return;
  }
  if (redirectTo && file === 'model.safetensors' && m[1] === 'org/redirected' && m[2] !== 'cdn') {
    // Like the Hub for LFS files: a 302 to a CDN on another origin.
    log.push({ url, range, status: 302 });
    res.writeHead(302, { location: `${redirectTo}/blobs/${file}`, 'x-repo-commit': COMMIT }).end();
    return;
  }
  let start = 0;
  let status = 200;
  const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
  const ifRange = req.headers['if-range'];
  const stale = ifRange !== undefined && ifRange !== etag;
  const rm = range && !ignoreRange && !stale ? /^bytes=(\d+)-$/.exec(range) : null;
  if (rm) {
    start = Number(rm[1]);
    if (start >= body.length) {
      log.push({ url, range, status: 416 });
      res.writeHead(416).end();
      return;
    }
    status = 206;
  }
  log.push({ url, range, status });
  times.push(performance.now());
  const chunk = body.subarray(start);
  const headers: Record<string, string | number> = { 'content-length': chunk.length, 'x-repo-commit': COMMIT, etag };
  if (status === 206) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
  res.writeHead(status, headers);
  const stall = stallAfter.get(file);
  if (stall !== undefined) {
    stallAfter.delete(file);
    res.write(chunk.subarray(0, stall));
    return;
  }
  const cut = cutAfter.get(file);
  if (cut !== undefined) {
    cutAfter.delete(file);
    res.write(chunk.subarray(0, cut), () => {
      // Give the client time to take the bytes in (on a loaded machine too), then drop the connection
      // mid-body. Tests still read the partial file's real size rather than assume all N bytes arrived.
      setTimeout(() => res.socket?.destroy(), 300);
    });
    return;
  }
  res.end(chunk);
}

const weights = randomBytes(300_000);
const config = Buffer.from(JSON.stringify({ model_type: 'vit', hidden_size: 8 }));
const tokenizerJson = Buffer.from(JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }));

beforeAll(async () => {
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The CDN serves /blobs/{file} of org/redirected through the same handler (Range, cut-offs, log).
  cdn = createServer((req, res) => {
    req.url = (req.url ?? '').replace(/^\/blobs\//, '/org/redirected/resolve/cdn/');
    handler(req, res);
  });
  await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
  redirectTo = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;
  repos.set(
    'org/model',
    new Map([
      ['config.json', config],
      ['model.safetensors', weights],
      ['tokenizer.json', tokenizerJson],
    ]),
  );
  const index = { metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' } };
  repos.set(
    'org/sharded',
    new Map([
      ['config.json', config],
      ['model.safetensors.index.json', Buffer.from(JSON.stringify(index))],
      ['model-00001-of-00002.safetensors', randomBytes(1000)],
      ['model-00002-of-00002.safetensors', randomBytes(2000)],
    ]),
  );
  repos.set('org/noweights', new Map([['config.json', config]]));
  repos.set('org/redirected', new Map([['config.json', config], ['model.safetensors', weights]]));
  const fix = (p: string): string => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
  repos.set(
    'test/distilbert-tiny',
    new Map([
      ['config.json', await readFile(fix('hf/distilbert-tiny/config.json'))],
      ['model.safetensors', await readFile(fix('hf/distilbert-tiny/model.safetensors'))],
      ['tokenizer.json', await readFile(fix('tokenizer/tokenizer.json'))],
    ]),
  );
  repos.set(
    'test/vit-tiny',
    new Map([
      ['config.json', await readFile(fix('hf/vit-tiny/config.json'))],
      ['model.safetensors', await readFile(fix('hf/vit-tiny/model.safetensors'))],
      ['preprocessor_config.json', Buffer.from(JSON.stringify({ size: { height: 32, width: 32 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] }))],
    ]),
  );
  await initBackend('cpu');
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => cdn.close(() => r()));
});
beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'clip-hub-'));
  log.length = 0;
  cutAfter.clear();
  failTimes.clear();
  stallAfter.clear();
  times.length = 0;
  ignoreRange = false;
});
afterEach(async () => {
  await rm(cache, { recursive: true, force: true });
});

/** Byte equality (vitest's deep toEqual on 300 kB buffers takes seconds). */
const same = (a: Buffer, b: Buffer | undefined): boolean => b !== undefined && a.equals(b);

const opts = (extra: object = {}) => ({ endpoint, cacheDir: cache, progress: false, offline: false, ...extra });

describe('resolvePretrained (loopback server)', () => {
  it('downloads config, weights and present tokenizer files into the Hub cache layout; 404 optional files are skipped', async () => {
    const dir = await resolvePretrained('org/model', opts());
    expect(dir).toBe(join(cache, 'models--org--model', 'snapshots', COMMIT));
    expect(same(await readFile(join(dir, 'model.safetensors')), weights)).toBe(true);
    expect(same(await readFile(join(dir, 'config.json')), config)).toBe(true);
    expect(same(await readFile(join(dir, 'tokenizer.json')), tokenizerJson)).toBe(true);
    expect(existsSync(join(dir, 'preprocessor_config.json'))).toBe(false);
    expect((await readFile(join(cache, 'models--org--model', 'refs', 'main'), 'utf8')).trim()).toBe(COMMIT);
    expect(existsSync(join(cache, 'models--org--model', '.no_exist', COMMIT, 'preprocessor_config.json'))).toBe(true);
    expect((await readdir(dir)).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
    expect(log.every((l) => l.url.startsWith('/org/model/resolve/main/'))).toBe(true);

    // Second call: served from the cache, no request at all — also in offline mode.
    log.length = 0;
    expect(await resolvePretrained('org/model', opts())).toBe(dir);
    expect(await resolvePretrained('org/model', opts({ offline: true }))).toBe(dir);
    expect(log).toEqual([]);
  });

  it('resumes a download cut off midway with a Range request on the next call; the file is byte-identical', async () => {
    const N = 100_000;
    cutAfter.set('model.safetensors', N);
    const err = await resolvePretrained('org/model', opts({ retries: 0 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toMatch(/model\.safetensors.*interrupted/);
    const snap = join(cache, 'models--org--model', 'snapshots', COMMIT);
    const partial = join(snap, 'model.safetensors.incomplete');
    // What reached the disk: normally all N bytes, but when the connection drops the HTTP client may
    // discard chunks it had not handed over yet, so resumption must start from the file's real size.
    const P = (await stat(partial)).size;
    expect(P).toBeGreaterThan(0);
    expect(P).toBeLessThanOrEqual(N);
    expect(same(await readFile(partial), weights.subarray(0, P))).toBe(true);
    expect(existsSync(join(snap, 'model.safetensors'))).toBe(false);

    log.length = 0;
    const dir = await resolvePretrained('org/model', opts({ retries: 0 }));
    const weightReqs = log.filter((l) => l.url.endsWith('/model.safetensors'));
    expect(weightReqs).toEqual([{ url: '/org/model/resolve/main/model.safetensors', range: `bytes=${P}-`, status: 206 }]);
    expect(same(await readFile(join(dir, 'model.safetensors')), weights)).toBe(true);
    expect(existsSync(partial)).toBe(false);
  });

  it('resumes within the same call when retries are allowed', async () => {
    cutAfter.set('model.safetensors', 50_000);
    const dir = await resolvePretrained('org/model', opts({ retries: 2 }));
    expect(same(await readFile(join(dir, 'model.safetensors')), weights)).toBe(true);
    const ranges = log.filter((l) => l.url.endsWith('/model.safetensors')).map((l) => l.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    expect(Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1])).toBeGreaterThan(0);
  });

  it('restarts from zero when the server ignores Range (HTTP 200)', async () => {
    cutAfter.set('model.safetensors', 70_000);
    await resolvePretrained('org/model', opts({ retries: 0 })).catch(() => undefined);
    ignoreRange = true;
    const dir = await resolvePretrained('org/model', opts({ retries: 0 }));
    expect(same(await readFile(join(dir, 'model.safetensors')), weights)).toBe(true);
  });

  it('follows a redirect to another origin and resumes there with Range', async () => {
    cutAfter.set('model.safetensors', 120_000);
    await expect(resolvePretrained('org/redirected', opts({ retries: 0 }))).rejects.toThrow(/interrupted/);
    const snap = join(cache, 'models--org--redirected', 'snapshots', COMMIT);
    const P = (await stat(join(snap, 'model.safetensors.incomplete'))).size;
    expect(P).toBeGreaterThan(0);
    log.length = 0;
    const dir = await resolvePretrained('org/redirected', opts({ retries: 0 }));
    expect(same(await readFile(join(dir, 'model.safetensors')), weights)).toBe(true);
    expect(log.filter((l) => l.url.includes('model.safetensors'))).toEqual([
      { url: '/org/redirected/resolve/main/model.safetensors', range: `bytes=${P}-`, status: 302 },
      { url: '/org/redirected/resolve/cdn/model.safetensors', range: `bytes=${P}-`, status: 206 },
    ]);
  });

  it('concurrent calls for the same repo share one download', async () => {
    const [a, b] = await Promise.all([resolvePretrained('org/model', opts()), resolvePretrained('org/model', opts())]);
    expect(a).toBe(b);
    expect(log.filter((l) => l.url.endsWith('/model.safetensors'))).toHaveLength(1);
    expect(same(await readFile(join(a, 'model.safetensors')), weights)).toBe(true);
  });

  it('a file that changed upstream between attempts is fetched whole (If-Range), not spliced', async () => {
    cutAfter.set('model.safetensors', 80_000);
    await resolvePretrained('org/model', opts({ retries: 0 })).catch(() => undefined);
    const files = repos.get('org/model') as Map<string, Buffer>;
    const updated = randomBytes(250_000);
    files.set('model.safetensors', updated);
    try {
      log.length = 0;
      const dir = await resolvePretrained('org/model', opts({ retries: 0 }));
      expect(same(await readFile(join(dir, 'model.safetensors')), updated)).toBe(true);
      const req = log.filter((l) => l.url.endsWith('/model.safetensors'));
      expect(req).toHaveLength(1);
      expect(req[0]).toMatchObject({ url: '/org/model/resolve/main/model.safetensors', status: 200 });
      expect(req[0]?.range).toMatch(/^bytes=\d+-$/);
      expect(existsSync(join(dir, 'model.safetensors.incomplete.etag'))).toBe(false);
    } finally {
      files.set('model.safetensors', weights);
    }
  });

  it('downloads sharded weights listed in model.safetensors.index.json', async () => {
    const dir = await resolvePretrained('org/sharded', opts());
    const files = repos.get('org/sharded') as Map<string, Buffer>;
    for (const f of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
      expect(same(await readFile(join(dir, f)), files.get(f))).toBe(true);
    }
    // Each shard fetched once although the index names the first twice.
    expect(log.filter((l) => l.url.endsWith('model-00001-of-00002.safetensors'))).toHaveLength(1);
  });

  it('a missing required file → HubError naming the file and the URL', async () => {
    const err = await resolvePretrained('org/absent', opts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as ClipError).code).toBe('HUB');
    expect((err as Error).message).toContain('config.json');
    expect((err as Error).message).toContain(`${endpoint}/org/absent/resolve/main/config.json`);

    const err2 = await resolvePretrained('org/noweights', opts()).catch((e: unknown) => e);
    expect((err2 as Error).message).toMatch(/model\.safetensors.*model\.safetensors\.index\.json/);
    expect((err2 as Error).message).toContain(`${endpoint}/org/noweights/resolve/main/`);
  });

  it('offline (HF_HUB_OFFLINE=1) with an empty cache → HubError listing what is missing, no request', async () => {
    const saved = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const err = await resolvePretrained('org/model', { endpoint, cacheDir: cache, progress: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HubError);
      expect((err as HubError).missing).toEqual(['config.json', 'model.safetensors (or model.safetensors.index.json + shards)']);
      expect((err as Error).message).toMatch(/offline/);
      expect((err as Error).message).toContain(cache);
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = saved;
    }
    expect(log).toEqual([]);
  });

  it('offline with a partial cache lists the missing shard', async () => {
    cutAfter.set('model-00002-of-00002.safetensors', 10);
    await resolvePretrained('org/sharded', opts({ retries: 0 })).catch(() => undefined);
    const err = await resolvePretrained('org/sharded', opts({ offline: true })).catch((e: unknown) => e);
    expect((err as HubError).missing).toEqual(['model-00002-of-00002.safetensors']);
  });

  it('returns an existing local directory as is; rejects what is neither a directory nor an id', async () => {
    expect(await resolvePretrained(cache, opts())).toBe(cache);
    await expect(resolvePretrained('./no/such/dir/here', opts())).rejects.toThrow(/neither an existing directory nor a Hub model id/);
    expect(log).toEqual([]);
  });
});

describe('resolvePretrained timeouts and retries (loopback server)', () => {
  it('a server that accepts and never answers → HubError naming the URL after the connect timeout', async () => {
    // Holds every request open without a response, as a wedged proxy or endpoint would.
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentEndpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const t0 = performance.now();
      const err = await resolvePretrained('org/model', opts({ endpoint: silentEndpoint, connectTimeoutMs: 300, retries: 1, retryDelayMs: 10 })).catch((e: unknown) => e);
      const elapsed = performance.now() - t0;
      expect(err).toBeInstanceOf(HubError);
      const msg = (err as Error).message;
      expect(msg).toContain(`${silentEndpoint}/org/model/resolve/main/config.json`);
      expect(msg).toMatch(/connect timeout/);
      expect(msg).toMatch(/2 attempts/);
      expect(msg).toMatch(/HF_HUB_OFFLINE=1/);
      expect(msg).toContain('HF_ENDPOINT');
      expect((err as HubError).missing).toEqual(['config.json']);
      // Both attempts waited for the timeout rather than failing at once.
      expect(elapsed).toBeGreaterThanOrEqual(2 * 300 - 20);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  }, 15_000);

  it('a body that stalls → read timeout, partial file kept, the next call resumes it', async () => {
    stallAfter.set('model.safetensors', 64_000);
    const err = await resolvePretrained('org/model', opts({ readTimeoutMs: 300, retries: 0 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toMatch(/model\.safetensors.*interrupted.*read timeout/);
    expect((err as Error).message).toContain(`${endpoint}/org/model/resolve/main/model.safetensors`);
    const partial = join(cache, 'models--org--model', 'snapshots', COMMIT, 'model.safetensors.incomplete');
    const P = (await stat(partial)).size;
    expect(P).toBeGreaterThan(0);
    log.length = 0;
    const dir = await resolvePretrained('org/model', opts({ readTimeoutMs: 300, retries: 0 }));
    expect(same(await readFile(join(dir, 'model.safetensors')), weights)).toBe(true);
    expect(log.filter((l) => l.url.endsWith('/model.safetensors'))).toEqual([
      { url: '/org/model/resolve/main/model.safetensors', range: `bytes=${P}-`, status: 206 },
    ]);
  }, 15_000);

  it('a stall is retried within the call and resumes', async () => {
    stallAfter.set('model.safetensors', 64_000);
    const dir = await resolvePretrained('org/model', opts({ readTimeoutMs: 300, retries: 1, retryDelayMs: 10 }));
    expect(same(await readFile(join(dir, 'model.safetensors')), weights)).toBe(true);
    const ranges = log.filter((l) => l.url.endsWith('/model.safetensors')).map((l) => l.range);
    expect(ranges).toHaveLength(2);
    expect(Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1])).toBeGreaterThan(0);
  }, 15_000);

  it('transient HTTP 503 twice, then success: retried with growing delays', async () => {
    failTimes.set('model.safetensors', 2);
    const dir = await resolvePretrained('org/model', opts({ retries: 2, retryDelayMs: 150 }));
    expect(same(await readFile(join(dir, 'model.safetensors')), weights)).toBe(true);
    const idx = log.flatMap((l, i) => (l.url.endsWith('/model.safetensors') ? [i] : []));
    expect(idx.map((i) => log[i]?.status)).toEqual([503, 503, 200]);
    const [t1, t2, t3] = idx.map((i) => times[i] as number) as [number, number, number];
    // Exponential backoff: at least retryDelayMs, then at least twice that (timer slack allowed).
    expect(t2 - t1).toBeGreaterThanOrEqual(150 - 10);
    expect(t3 - t2).toBeGreaterThanOrEqual(300 - 10);
  }, 15_000);

  it('retries are bounded: a third 503 with retries: 1 → HubError naming the status and URL', async () => {
    failTimes.set('config.json', 3);
    const err = await resolvePretrained('org/model', opts({ retries: 1, retryDelayMs: 10 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toContain(`HTTP 503 from ${endpoint}/org/model/resolve/main/config.json`);
    expect(log.filter((l) => l.url.endsWith('/config.json'))).toHaveLength(2);
  });

  it('a permanent 404 is not retried', async () => {
    const err = await resolvePretrained('org/absent', opts({ retries: 5, retryDelayMs: 10 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toContain(`${endpoint}/org/absent/resolve/main/config.json`);
    expect(log).toHaveLength(1);
  });

  it('bad timeout settings → HubError naming the option or variable', async () => {
    await expect(resolvePretrained('org/model', opts({ connectTimeoutMs: -1 }))).rejects.toThrow(/connectTimeoutMs/);
    await expect(resolvePretrained('org/model', opts({ retries: 1.5 }))).rejects.toThrow(/retries/);
    const saved = process.env.HF_HUB_DOWNLOAD_TIMEOUT;
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = 'soon';
    try {
      const err = await resolvePretrained('org/model', opts()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HubError);
      expect((err as Error).message).toContain('HF_HUB_DOWNLOAD_TIMEOUT');
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_DOWNLOAD_TIMEOUT;
      else process.env.HF_HUB_DOWNLOAD_TIMEOUT = saved;
    }
    expect(log).toEqual([]);
  });
});

describe('fromPretrained (loopback server)', () => {
  it('text tower: downloads, loads DistilBERT and its tokenizer, encodes a caption', async () => {
    const before = tf.memory().numTensors;
    const m = await fromPretrained('test/distilbert-tiny', opts());
    if (m.kind !== 'text') throw new Error(`expected a text tower, got ${m.kind}`);
    expect(m.dir).toBe(join(cache, 'models--test--distilbert-tiny', 'snapshots', COMMIT));
    expect(m.encoder.hiddenSize).toBe(32);
    expect(m.tokenizer?.encodeOne('Hello, my dog is cute')).toEqual([101, 7592, 1010, 2026, 3899, 2003, 10140, 102]);
    const input = m.tokenizer!.tokenize(['a dog runs', 'two children'], 16);
    const out = m.encoder.encode(input);
    expect(out.shape).toEqual([2, 32]);
    tf.dispose([out, input.inputIds, input.attentionMask]);
    m.encoder.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('image tower: loads ViT with preprocessor_config.json, overrides win', async () => {
    const m = await fromPretrained('test/vit-tiny', opts({ imageProcessor: { mean: CLIP_MEAN } }));
    expect(m.kind).toBe('image');
    expect([m.imageProcessor?.height, m.imageProcessor?.width]).toEqual([32, 32]);
    expect(m.imageProcessor?.options.mean).toEqual([...CLIP_MEAN]);
    expect(m.imageProcessor?.options.std).toEqual([0.5, 0.5, 0.5]);
    m.encoder.dispose();
  });
});
