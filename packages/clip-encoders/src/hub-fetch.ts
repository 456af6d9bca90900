/**
 * The network side of Hub downloads: fetch with a deadline for the response headers and an idle deadline
 * between body chunks, the line between transient failures (worth retrying) and permanent ones, and
 * retries with exponential backoff (p-retry).
 *
 * Timeouts ride on the fetch AbortSignal rather than a separate HTTP client so redirects, proxies and
 * TLS behave exactly like the platform's fetch; aborting with a reason makes that reason the error the
 * request or its body stream fails with.
 */
import pRetry from 'p-retry';
import { z } from 'zod';
import { HubError } from './errors.js';

/** Timeout and retry settings of one resolvePretrained call (see ResolveOptions). */
export interface HttpSettings {
  connectTimeoutMs: number;
  readTimeoutMs: number;
  retries: number;
  retryDelayMs: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

const ms = z.number().positive().finite();
const settingsSchema = z.object({
  connectTimeoutMs: ms.optional(),
  readTimeoutMs: ms.optional(),
  retries: z.number().int().min(0).max(100).optional(),
  retryDelayMs: z.number().min(0).finite().optional(),
});
const envSeconds = z.coerce.number().positive().finite();

/**
 * The effective settings: explicit options, else `$HF_HUB_DOWNLOAD_TIMEOUT` (seconds, as in Python
 * huggingface_hub) for both timeouts, else 30 s; 2 retries starting 1 s apart. Bad values → HubError
 * naming the option or variable.
 */
export function httpSettings(opts: Partial<HttpSettings>): HttpSettings {
  const parsed = settingsSchema.safeParse({
    connectTimeoutMs: opts.connectTimeoutMs,
    readTimeoutMs: opts.readTimeoutMs,
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HubError(`resolvePretrained options: '${String(issue?.path[0])}' ${issue?.message ?? 'is invalid'}`);
  }
  let timeout = DEFAULT_TIMEOUT_MS;
  const env = process.env.HF_HUB_DOWNLOAD_TIMEOUT;
  if (env !== undefined && env !== '') {
    const seconds = envSeconds.safeParse(env);
    if (!seconds.success) throw new HubError(`HF_HUB_DOWNLOAD_TIMEOUT='${env}' is not a positive number of seconds`);
    timeout = seconds.data * 1000;
  }
  const o = parsed.data;
  return {
    connectTimeoutMs: o.connectTimeoutMs ?? timeout,
    readTimeoutMs: o.readTimeoutMs ?? timeout,
    retries: o.retries ?? 2,
    retryDelayMs: o.retryDelayMs ?? 1000,
  };
}

/** A failure that may pass on a later attempt: network error, timeout, HTTP 408/429/5xx, a cut-off body. */
export class TransientError extends Error {}

/** HTTP statuses worth another attempt (the server said "not now", not "no"). */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Restartable idle deadline for reading a response body; `stop` when done (also on errors). */
export interface IdleWatch {
  /** Data arrived: restart the deadline. */
  touch(): void;
  stop(): void;
}

/**
 * GET `url`. Rejects with TransientError when the connection fails or no response headers arrive within
 * `connectTimeoutMs`. After the headers, the body stream fails with a TransientError when `idle` is not
 * touched for `readTimeoutMs` (the watch is already running: waiting for the first chunk counts).
 * The caller owns the response: consume or cancel its body, and stop `idle`.
 */
export async function openGet(
  url: string,
  headers: Record<string, string>,
  s: Pick<HttpSettings, 'connectTimeoutMs' | 'readTimeoutMs'>,
): Promise<{ res: Response; idle: IdleWatch }> {
  const ac = new AbortController();
  const connect = setTimeout(
    () => ac.abort(new TransientError(`no response from ${url} within ${s.connectTimeoutMs} ms (connect timeout)`)),
    s.connectTimeoutMs,
  );
  let res: Response;
  try {
    res = await fetch(url, { headers, redirect: 'follow', signal: ac.signal });
  } catch (err) {
    if (err instanceof TransientError) throw err;
    // fetch hides the useful part (ECONNREFUSED, ENOTFOUND…) in `cause`.
    const cause = (err as Error).cause as Error | undefined;
    const detail = cause?.message ? `${(err as Error).message}: ${cause.message}` : (err as Error).message;
    throw new TransientError(`cannot connect to ${url}: ${detail}`, { cause: err });
  } finally {
    clearTimeout(connect);
  }
  let timer: NodeJS.Timeout | undefined;
  const idle: IdleWatch = {
    touch() {
      clearTimeout(timer);
      timer = setTimeout(() => ac.abort(new TransientError(`no data for ${s.readTimeoutMs} ms (read timeout)`)), s.readTimeoutMs);
    },
    stop() {
      clearTimeout(timer);
    },
  };
  idle.touch();
  return { res, idle };
}

/**
 * Run `attempt` until it succeeds, retrying TransientErrors up to `retries` times with exponential
 * backoff (retryDelayMs, ×2 each time, randomised up to ×2 so parallel clients spread out, capped at 30 s).
 * Any other error ends it at once; so does the last TransientError, which the caller turns into a
 * HubError with advice.
 */
export function withRetries<T>(attempt: (attemptNumber: number) => Promise<T>, s: Pick<HttpSettings, 'retries' | 'retryDelayMs'>): Promise<T> {
  return pRetry(attempt, {
    retries: s.retries,
    minTimeout: s.retryDelayMs,
    maxTimeout: Math.max(s.retryDelayMs, 30_000),
    factor: 2,
    randomize: true,
    shouldRetry: ({ error }) => error instanceof TransientError,
  });
}
