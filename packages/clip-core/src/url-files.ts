import { CheckpointError } from './errors.js';

/** Fetching the files of a checkpoint directory served over HTTP(S) (a static server, the Hub). Browser-safe. */

export type FetchFn = (url: string) => Promise<Response>;

export interface UrlFile {
  url: string;
  res: Response;
}

export interface UrlDirectory {
  /** `base` with a trailing slash. */
  root: string;
  /** `<root><file>`; a failed request or a non-OK status is a CheckpointError naming the URL and status. */
  get(file: string): Promise<UrlFile>;
  /** As get, but a 404 ("the checkpoint has no such file") gives undefined, with the connection released. */
  getOptional(file: string): Promise<UrlFile | undefined>;
}

/** The files under the directory URL `base`, fetched with `fetch` (default globalThis.fetch). */
export function urlDirectory(base: string | URL, fetch: FetchFn = (url) => globalThis.fetch(url)): UrlDirectory {
  const root = String(base).endsWith('/') ? String(base) : `${String(base)}/`;
  const request = async (file: string): Promise<UrlFile> => {
    const url = new URL(file, root).href;
    try {
      return { url, res: await fetch(url) };
    } catch (err) {
      throw new CheckpointError(`${url}: cannot fetch: ${(err as Error).message}`, { cause: err });
    }
  };
  const failed = ({ url, res }: UrlFile) => new CheckpointError(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  return {
    root,
    async get(file) {
      const r = await request(file);
      if (!r.res.ok) throw failed(r);
      return r;
    },
    async getOptional(file) {
      const r = await request(file);
      if (r.res.status === 404) {
        await r.res.body?.cancel();
        return undefined;
      }
      if (!r.res.ok) throw failed(r);
      return r;
    },
  };
}
