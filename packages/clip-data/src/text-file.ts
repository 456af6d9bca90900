import { DataError } from '@clip-ts/core';
import { listSome } from './list-some.js';
import type { WarningSink } from './types.js';

/**
 * Decoding a dataset's text file without silently changing it: bytes that are not UTF-8 would otherwise
 * become U+FFFD unnoticed, and one enormous line (a binary file, a file without newlines) would be
 * tokenised at great cost. Both are found on the raw bytes, before any string is built.
 */

/** Longest line accepted, in bytes: far above any caption (Flickr8k's longest is under 200 bytes). */
export const MAX_LINE_BYTES = 64 * 1024;

export interface TextFileOptions {
  /** 'warn' (default): report the lines, decode them with U+FFFD; 'error': refuse the file. */
  invalidUtf8?: 'warn' | 'error';
  warn?: WarningSink;
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** Decode `bytes` (file `file`, described as `what`) as UTF-8 text, BOM dropped; see TextFileOptions. */
export function decodeTextFile(file: string, what: string, bytes: Uint8Array, options: TextFileOptions = {}): string {
  const badLines: number[] = [];
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    if (end - start > MAX_LINE_BYTES) {
      throw new DataError(`${what}: ${file}:${line}: line is ${end - start} bytes long, over the limit of ${MAX_LINE_BYTES} (not a text file of captions/names?)`);
    }
    if (!isAscii(bytes, start, end)) {
      try {
        strictDecoder.decode(bytes.subarray(start, end));
      } catch {
        badLines.push(line);
      }
    }
    start = end + 1;
  }
  if (badLines.length > 0) {
    const where = `${file}: ${badLines.length} line(s) are not valid UTF-8 (lines ${listSome(badLines.map(String))})`;
    if (options.invalidUtf8 === 'error') throw new DataError(`${what}: ${where}; re-encode the file as UTF-8`);
    options.warn?.(`${where}: the invalid bytes were replaced by U+FFFD (invalidUtf8: 'error' refuses such files)`);
  }
  const text = new TextDecoder('utf-8').decode(bytes);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function isAscii(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if ((bytes[i] as number) >= 0x80) return false;
  return true;
}
