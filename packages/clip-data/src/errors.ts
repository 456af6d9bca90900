import { DataError, ShapeError } from '@clip-ts/core';
import type { ImageProcessor } from '@clip-ts/core';

/** An image file (or raw record) could not be decoded; `source` names it. Loaders may skip these. */
export class BadImageError extends DataError {
  readonly source: string;
  constructor(source: string, options?: { cause?: unknown }) {
    const why = options?.cause instanceof Error ? options.cause.message : String(options?.cause ?? 'unknown error');
    // A decoder's own DataError may already say "cannot decode image <source>: ": say it once.
    const prefix = `cannot decode image ${source}: `;
    super(why.startsWith(prefix) ? why : `${prefix}${why}`, options);
    this.source = source;
  }
}

async function checked(processor: ImageProcessor, source: string, run: () => Promise<Float32Array>): Promise<Float32Array> {
  let out: Float32Array;
  try {
    out = await run();
  } catch (err) {
    throw err instanceof BadImageError ? err : new BadImageError(source, { cause: err });
  }
  const want = 3 * processor.height * processor.width;
  if (out.length !== want) {
    throw new ShapeError(
      `image processor returned ${out.length} values for ${source}; expected 3*${processor.height}*${processor.width} = ${want}`,
    );
  }
  return out;
}

/** Decode a file through the processor; a decoding failure becomes a BadImageError naming the file. */
export function processFileChecked(processor: ImageProcessor, file: string): Promise<Float32Array> {
  return checked(processor, file, () => processor.processFile(file));
}

/** Raw interleaved RGB through the processor; a failure becomes a BadImageError naming `source`. */
export function processRawChecked(
  processor: ImageProcessor,
  pixels: Uint8Array,
  width: number,
  height: number,
  source: string,
): Promise<Float32Array> {
  return checked(processor, source, () => processor.processRaw(pixels, width, height, 3, source));
}
