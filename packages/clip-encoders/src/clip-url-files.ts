import { CheckpointError, parseSafetensors, urlDirectory, type FetchFn } from '@clip-ts/core';
import type { CheckpointFiles, DownloadProgress } from './clip-checkpoint.js';

/** A checkpoint directory served over HTTP(S) (a static server, the Hub's resolve URLs). Browser-safe. */

export interface UrlFilesOptions {
  fetch?: FetchFn;
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
  const { root, getOptional } = urlDirectory(base, options.fetch);
  return {
    name: root,
    async text(file) {
      const found = await getOptional(file);
      return found === undefined ? undefined : new TextDecoder().decode(await readBody(found.res, file, options.onDownloadProgress));
    },
    async tensors(keep) {
      const found = await getOptional('model.safetensors');
      if (found === undefined) {
        throw new CheckpointError(`${root}model.safetensors: HTTP 404; loading from a URL needs a single model.safetensors (download sharded or pickle-only repos by Hub id in Node)`);
      }
      const { url, res } = found;
      const bytes = await readBody(res, 'model.safetensors', options.onDownloadProgress);
      return { tensors: parseSafetensors(bytes, url, { filter: keep }).tensors, source: url };
    },
  };
}
