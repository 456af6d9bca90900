/**
 * Resolve a pretrained model to a local directory: a local path as is, else a cached snapshot, else a
 * download from the Hugging Face Hub (or any server with the same `/{id}/resolve/{revision}/{file}` URLs).
 *
 * Cache layout is the Hub's (`models--{org}--{name}/snapshots/{commit}/{file}`, `refs/{revision}` holding
 * the commit, `.no_exist/{commit}/{file}` recording an optional file the repo does not have), so a
 * cache shared with Python `huggingface_hub` is read as is. Files are written to `{file}.incomplete`
 * and renamed when complete (atomic); an interrupted download resumes with an HTTP Range request.
 * Timeouts and retries live in hub-fetch.ts. docs/encoders.md says why this is not @huggingface/hub:
 * it needs the Hub API, cannot resume, and puts a branch's files into per-file snapshot folders.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { HubError } from './errors.js';
import { httpSettings, isTransientStatus, openGet, TransientError, withRetries, type HttpSettings, type IdleWatch } from './hub-fetch.js';
import { exists as isFile, readShardIndex, type ErrorFactory } from './files.js';

/** Files fetched when present (a 404 is fine). */
export const OPTIONAL_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
] as const;

export interface ResolveOptions {
  /** Branch, tag or commit. Default 'main'. */
  revision?: string;
  /** Cache root (the `hub` folder). Default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/clip-ts. */
  cacheDir?: string;
  /** Default: $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Never touch the network. Default: $HF_HUB_OFFLINE is 1/true. */
  offline?: boolean;
  /** Bearer token for gated/private repos. Default: $HF_TOKEN. */
  token?: string;
  /** Extra optional files to fetch (beside config, weights and OPTIONAL_FILES). */
  extraFiles?: readonly string[];
  /** Progress bar on stderr. Default: when stderr is a TTY. */
  progress?: boolean;
  /**
   * Retries per file within one call after a transient failure: connection error, timeout, HTTP
   * 408/429/5xx, or a connection dropped mid-file (the retry resumes with Range). Default 2.
   */
  retries?: number;
  /** Delay before the first retry; each next one doubles (randomised up to ×2, capped at 30 s). Default 1000. */
  retryDelayMs?: number;
  /** Time allowed to connect and receive the response headers. Default: $HF_HUB_DOWNLOAD_TIMEOUT s, else 30 s. */
  connectTimeoutMs?: number;
  /** Longest pause allowed between two chunks of a response body. Default: $HF_HUB_DOWNLOAD_TIMEOUT s, else 30 s. */
  readTimeoutMs?: number;
}

const ID_RE = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

function envFlag(v: string | undefined): boolean {
  return v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());
}

/** The cache root that downloads go to (see ResolveOptions.cacheDir). */
export function defaultCacheDir(): string {
  const env = process.env;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'hub');
  return join(homedir(), '.cache', 'clip-ts');
}

/** Cache roots searched before downloading: the write root, then Python huggingface_hub's default. */
function lookupRoots(opts: ResolveOptions): string[] {
  const roots = [opts.cacheDir ?? defaultCacheDir()];
  if (opts.cacheDir === undefined) roots.push(join(homedir(), '.cache', 'huggingface', 'hub'));
  return [...new Set(roots)];
}

function repoFolder(id: string): string {
  return `models--${id.replace(/\//g, '--')}`;
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

const hubError: ErrorFactory = (m, o) => new HubError(m, [], o);

async function shardsOf(indexPath: string): Promise<string[]> {
  return (await readShardIndex(indexPath, hubError)).shards;
}

/** Required files a snapshot directory lacks (empty when complete). */
async function missingIn(snapshot: string): Promise<string[]> {
  const missing: string[] = [];
  if (!(await isFile(join(snapshot, 'config.json')))) missing.push('config.json');
  if (await isFile(join(snapshot, 'model.safetensors'))) return missing;
  const index = join(snapshot, 'model.safetensors.index.json');
  if (!(await isFile(index))) return [...missing, 'model.safetensors (or model.safetensors.index.json + shards)'];
  for (const s of await shardsOf(index)) if (!(await isFile(join(snapshot, s)))) missing.push(s);
  return missing;
}

/** The snapshot dir a cache root holds for id@revision, if any (not checked for completeness). */
async function cachedSnapshot(root: string, id: string, revision: string): Promise<string | undefined> {
  const repo = join(root, repoFolder(id));
  let commit = revision;
  try {
    commit = (await readFile(join(repo, 'refs', revision), 'utf8')).trim();
  } catch {
    // No ref: `revision` may itself be a commit hash naming a snapshot folder.
  }
  const snap = join(repo, 'snapshots', commit);
  return (await isDir(snap)) ? snap : undefined;
}

class NotFound extends Error {}

interface DownloadContext {
  endpoint: string;
  id: string;
  revision: string;
  headers: Record<string, string>;
  bars: cliProgress.MultiBar | undefined;
  http: HttpSettings;
}

function fileUrl(ctx: DownloadContext, file: string): string {
  const rev = encodeURIComponent(ctx.revision);
  return `${ctx.endpoint.replace(/\/+$/, '')}/${ctx.id}/resolve/${rev}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * GET url into dest, resuming from `${dest}.incomplete` with a Range request, retrying transient
 * failures (see withRetries). Returns the `X-Repo-Commit` header when the server sends one. Throws
 * NotFound on 404, HubError otherwise.
 */
async function downloadFile(ctx: DownloadContext, file: string, dest: string): Promise<string | undefined> {
  const url = fileUrl(ctx, file);
  await mkdir(dirname(dest), { recursive: true });
  try {
    return await withRetries(() => attemptDownload(ctx, file, url, dest), ctx.http);
  } catch (err) {
    if (!(err instanceof TransientError)) throw err;
    const attempts = ctx.http.retries + 1;
    throw new HubError(
      `${err.message} [${attempts} attempt${attempts === 1 ? '' : 's'}]. Check the network and the endpoint ` +
        `(${ctx.endpoint}; set by HF_ENDPOINT or opts.endpoint), raise opts.connectTimeoutMs / opts.readTimeoutMs ` +
        '(or HF_HUB_DOWNLOAD_TIMEOUT) or opts.retries, or work without the network: HF_HUB_OFFLINE=1 with a filled ' +
        'cache, or pass a local model directory.',
      [file],
      { cause: err },
    );
  }
}

/** One request for `file` (plus one restart from zero on a 416): writes `${dest}.incomplete`, renames it to dest. */
async function attemptDownload(ctx: DownloadContext, file: string, url: string, dest: string): Promise<string | undefined> {
  const part = `${dest}.incomplete`;
  for (let restarted = false; ; restarted = true) {
    const have = await stat(part).then(
      (s) => s.size,
      () => 0,
    );
    const headers: Record<string, string> = { ...ctx.headers };
    if (have > 0) {
      headers.Range = `bytes=${have}-`;
      // If the file changed upstream since the partial download, If-Range makes the server send the
      // whole new file (200) instead of splicing two versions together.
      const etag = await readFile(`${part}.etag`, 'utf8').catch(() => undefined);
      if (etag) headers['If-Range'] = etag;
    }
    const { res, idle } = await openGet(url, headers, ctx.http);
    try {
      if (res.status === 404) {
        await res.body?.cancel();
        throw new NotFound(url);
      }
      if (res.status === 416 && have > 0 && !restarted) {
        // Our partial file does not fit the server's (changed upstream?): start over.
        await res.body?.cancel();
        await rm(part, { force: true });
        continue;
      }
      if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        const hint = res.status === 401 || res.status === 403 ? ' (gated or private repo? set HF_TOKEN)' : '';
        const message = `cannot fetch ${file}: HTTP ${res.status} from ${url}${hint}`;
        if (isTransientStatus(res.status)) throw new TransientError(message);
        throw new HubError(message, [file]);
      }
      return await saveBody(ctx, file, url, res, idle, have, dest);
    } finally {
      idle.stop();
    }
  }
}

/** Streams a 200/206 response into `${dest}.incomplete` and renames it to dest when complete. */
async function saveBody(
  ctx: DownloadContext,
  file: string,
  url: string,
  res: Response,
  idle: IdleWatch,
  have: number,
  dest: string,
): Promise<string | undefined> {
  const part = `${dest}.incomplete`;
  // 200 means the server ignored (or we sent no) Range: write from the start.
  const append = res.status === 206;
  const start = append ? have : 0;
  const length = Number(res.headers.get('content-length') ?? NaN);
  const total = Number.isFinite(length) ? start + length : undefined;
  const etag = res.headers.get('etag');
  if (!append) {
    // Strong validators only (If-Range ignores weak ones).
    if (etag && !etag.startsWith('W/')) await writeFile(`${part}.etag`, etag);
    else await rm(`${part}.etag`, { force: true });
  }
  const bar = ctx.bars?.create(total ?? 0, start, { file });
  let received = start;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      idle.touch();
      received += chunk.length;
      bar?.update(received);
      cb(null, chunk);
    },
  });
  try {
    if (!res.body) throw new Error('empty response body');
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), counter, createWriteStream(part, { flags: append ? 'a' : 'w' }));
  } catch (err) {
    bar?.stop();
    // A cut-off body is transient: the next attempt (or call) resumes from what reached the disk.
    throw new TransientError(
      `download of ${file} from ${url} was interrupted after ${received} bytes (kept in ${part}; the next call resumes): ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    if (bar) ctx.bars?.remove(bar);
  }
  const size = (await stat(part)).size;
  if (total !== undefined && size !== total) {
    throw new TransientError(`download of ${file} from ${url}: got ${size} bytes, expected ${total} (kept in ${part})`);
  }
  await rename(part, dest);
  await rm(`${part}.etag`, { force: true });
  return res.headers.get('x-repo-commit') ?? undefined;
}

async function fetchRepo(id: string, revision: string, root: string, opts: ResolveOptions): Promise<string> {
  const http = httpSettings(opts);
  const token = opts.token ?? process.env.HF_TOKEN;
  const showBars = opts.progress ?? Boolean(process.stderr.isTTY);
  const bars = showBars
    ? new cliProgress.MultiBar(
        { format: ' {bar} {percentage}% | {value}/{total} B | {file}', hideCursor: true, clearOnComplete: true, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const ctx: DownloadContext = {
    endpoint: opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co',
    id,
    revision,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    bars,
    http,
  };
  const repo = join(root, repoFolder(id));
  try {
    // config.json first: it is small, required, and its response names the commit for the snapshot dir.
    // It goes to a staging path because the snapshot folder is only known once the commit is.
    const staging = join(repo, 'staging', encodeURIComponent(revision));
    let commit: string | undefined;
    const existing = await cachedSnapshot(root, id, revision);
    let snapshot: string;
    if (existing && (await isFile(join(existing, 'config.json')))) {
      snapshot = existing;
    } else {
      try {
        commit = await downloadFile(ctx, 'config.json', join(staging, 'config.json'));
      } catch (err) {
        if (err instanceof NotFound) {
          throw new HubError(`${id}@${revision}: config.json not found at ${err.message} (is '${id}' a model repo id?)`, ['config.json']);
        }
        throw err;
      }
      snapshot = join(repo, 'snapshots', commit ?? revision);
      await mkdir(snapshot, { recursive: true });
      await rename(join(staging, 'config.json'), join(snapshot, 'config.json'));
      await rm(join(repo, 'staging'), { recursive: true, force: true });
      if (commit !== undefined && commit !== revision) {
        await mkdir(join(repo, 'refs'), { recursive: true });
        await writeFile(join(repo, 'refs', revision), commit);
      }
    }
    const commitDir = snapshot.slice(snapshot.lastIndexOf('snapshots') + 'snapshots'.length + 1);
    const noExist = join(repo, '.no_exist', commitDir);
    const get = async (file: string, required: boolean): Promise<boolean> => {
      const dest = join(snapshot, file);
      if (await isFile(dest)) return true;
      if (!required && (await isFile(join(noExist, file)))) return false;
      try {
        await downloadFile(ctx, file, dest);
        return true;
      } catch (err) {
        if (!(err instanceof NotFound)) throw err;
        if (required) throw new HubError(`${id}@${revision}: ${file} not found at ${err.message}`, [file]);
        await mkdir(noExist, { recursive: true });
        await writeFile(join(noExist, file), '');
        return false;
      }
    };
    if (!(await get('model.safetensors', false))) {
      if (!(await get('model.safetensors.index.json', false))) {
        throw new HubError(
          `${id}@${revision}: neither model.safetensors nor model.safetensors.index.json exists at ${fileUrl(ctx, '')} ` +
            '(pytorch_model.bin checkpoints are not supported: convert them to safetensors)',
          ['model.safetensors'],
        );
      }
      for (const shard of await shardsOf(join(snapshot, 'model.safetensors.index.json'))) await get(shard, true);
    }
    for (const f of [...OPTIONAL_FILES, ...(opts.extraFiles ?? [])]) await get(f, false);
    return snapshot;
  } finally {
    bars?.stop();
  }
}

/**
 * A local directory holding `config.json`, the safetensors weights and (when the repo has them) the
 * tokenizer / preprocessor files. `idOrPath` is an existing directory (returned as is, absolute) or a
 * Hub id (`org/name`). Errors (HubError, code 'HUB'): a missing required file (naming it and its URL),
 * offline mode with an incomplete cache (listing what is missing), HTTP failures.
 */
export async function resolvePretrained(idOrPath: string, opts: ResolveOptions = {}): Promise<string> {
  if (await isDir(idOrPath)) return resolvePath(idOrPath);
  if (!ID_RE.test(idOrPath) || idOrPath.includes('..')) {
    throw new HubError(`'${idOrPath}' is neither an existing directory nor a Hub model id (org/name)`);
  }
  const revision = opts.revision ?? 'main';
  const roots = lookupRoots(opts);
  for (const root of roots) {
    const snap = await cachedSnapshot(root, idOrPath, revision);
    // A complete snapshot is used without a network round trip, also for a branch name (like
    // transformers with a warm cache minus its HEAD check); delete the snapshot to refresh it.
    if (snap && (await missingIn(snap)).length === 0) return snap;
  }
  const offline = opts.offline ?? envFlag(process.env.HF_HUB_OFFLINE);
  if (offline) {
    const snap = await cachedSnapshot(roots[0] as string, idOrPath, revision);
    const missing = snap ? await missingIn(snap) : ['config.json', 'model.safetensors (or model.safetensors.index.json + shards)'];
    throw new HubError(
      `${idOrPath}@${revision} is not fully cached and offline mode is on (HF_HUB_OFFLINE): missing ${missing.join(', ')}; ` +
        `looked in ${roots.join(', ')}. Unset HF_HUB_OFFLINE to download, or pass a local directory.`,
      missing,
    );
  }
  // Concurrent calls for the same repo share one download (they would otherwise write the same
  // .incomplete files). Other processes are not coordinated with.
  const key = `${roots[0]}\0${idOrPath}\0${revision}`;
  let pending = inFlight.get(key);
  if (!pending) {
    pending = fetchRepo(idOrPath, revision, roots[0] as string, opts).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

const inFlight = new Map<string, Promise<string>>();
