import { CheckpointError, parseSafetensors } from '@clip-ts/core';
import type { CheckpointFiles, DownloadProgress } from './clip-checkpoint.js';

/** A checkpoint directory served over HTTP(S) (a static server, the Hub's resolve URLs). Browser-safe. */

export interface UrlFilesOptions {
  fetch?: (url: string) => Promise<Response>;
  onDownloadProgress?: (progress: DownloadProgress) => void;
}

/** The body, reporting progress per chunk when asked (a large model.safetensors takes a while). */
async function readBody(res: Response, file: string, onProgress: UrlFilesOptions['onDownloadProgress']): Promise<Uint8Array> {
  const length = Number(res.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : undefined;
  if (!onProgress || !res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress({ file, loaded, total });
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The files under `base` (a directory URL). A 404 means "the checkpoint has no such file"; any other
 * failure is a CheckpointError naming the URL. Weights: a single model.safetensors.
 */
export function urlFiles(base: string | URL, options: UrlFilesOptions = {}): CheckpointFiles {
  const doFetch = options.fetch ?? ((url: string) => globalThis.fetch(url));
  const root = String(base).endsWith('/') ? String(base) : `${String(base)}/`;
  const get = async (file: string): Promise<{ url: string; res: Response | undefined }> => {
    const url = new URL(file, root).href;
    let res: Response;
    try {
      res = await doFetch(url);
    } catch (err) {
      throw new CheckpointError(`${url}: cannot fetch: ${(err as Error).message}`, { cause: err });
    }
    if (res.status === 404) {
      await res.body?.cancel(); // frees the connection
      return { url, res: undefined };
    }
    if (!res.ok) throw new CheckpointError(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
    return { url, res };
  };
  return {
    name: root,
    async text(file) {
      const { res } = await get(file);
      return res === undefined ? undefined : new TextDecoder().decode(await readBody(res, file, options.onDownloadProgress));
    },
    async tensors(keep) {
      const { url, res } = await get('model.safetensors');
      if (res === undefined) {
        throw new CheckpointError(`${url}: HTTP 404; loading from a URL needs a single model.safetensors (download sharded or pickle-only repos by Hub id in Node)`);
      }
      const bytes = await readBody(res, 'model.safetensors', options.onDownloadProgress);
      return { tensors: parseSafetensors(bytes, url, { filter: keep }).tensors, source: url };
    },
  };
}
