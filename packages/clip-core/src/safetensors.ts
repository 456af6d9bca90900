/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors, format: 8-byte little-endian
 * header length N, N bytes of JSON header, then the data region; each header entry gives dtype, shape
 * and [begin, end) byte offsets relative to the data region).
 *
 * Bytes in, bytes out (browser-safe); reading and writing files is in ./safetensors-file.ts (Node).
 *
 * The reader treats the file as hostile: every header value is validated before anything is allocated
 * from it, and every violation is a SafetensorsError naming the file and the tensor.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { TensorData } from './encoder.js';
import { SafetensorsError } from './errors.js';

/** Dtypes this reader decodes. Floats widen to float32, integers to int32 (range-checked). */
export const SAFETENSORS_DTYPES = {
  F64: { size: 8, kind: 'float32' },
  F32: { size: 4, kind: 'float32' },
  F16: { size: 2, kind: 'float32' },
  BF16: { size: 2, kind: 'float32' },
  I64: { size: 8, kind: 'int32' },
  U64: { size: 8, kind: 'int32' },
  I32: { size: 4, kind: 'int32' },
  U32: { size: 4, kind: 'int32' },
  I16: { size: 2, kind: 'int32' },
  U16: { size: 2, kind: 'int32' },
  I8: { size: 1, kind: 'int32' },
  U8: { size: 1, kind: 'int32' },
  BOOL: { size: 1, kind: 'int32' },
} as const satisfies Record<string, { size: number; kind: 'float32' | 'int32' }>;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

/** The reference implementation's cap on the JSON header (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsFile {
  tensors: Map<string, TensorData>;
  /** The header's `__metadata__` (string → string), `{}` when absent. */
  metadata: Record<string, string>;
}

/** One header entry, validated. Offsets are relative to the data region. */
export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Entries in header order. */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Absolute file offset of the data region (8 + header length). */
  dataStart: number;
}

export interface ReadOptions {
  /** Decode only the tensors this returns true for (others are validated but skipped). */
  filter?: (name: string) => boolean;
}

/** A tensor to write. Float dtypes are encoded from `data` (F16/BF16 round to nearest even). */
export interface WritableTensor {
  dtype: 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';
  shape: number[];
  data: Float32Array | Int32Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------------
// Header parsing
// ---------------------------------------------------------------------------------------------------

function fail(source: string, what: string): never {
  throw new SafetensorsError(`${source}: ${what}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Read the 8-byte length prefix and check it against the file size. Returns the header length.
 * `fileSize` is the whole file's size in bytes.
 */
/** @internal Shared with the file reader (./safetensors-file.ts); not part of the public API. */
export function checkHeaderLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8 || prefix.length < 8) fail(source, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, fileSize - 8))) {
    fail(
      source,
      `header length ${n} exceeds ${n > BigInt(MAX_HEADER_BYTES) ? `the ${MAX_HEADER_BYTES}-byte cap` : `the ${fileSize - 8} bytes after the length prefix`}`,
    );
  }
  if (n < 2n) fail(source, `header length ${n} is too short for a JSON object`);
  return Number(n);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** @internal Shared with the file reader (./safetensors-file.ts); not part of the public API. */
export function parseHeaderJson(headerBytes: Uint8Array, dataLength: number, source: string): Omit<SafetensorsHeader, 'dataStart'> {
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch (err) {
    throw new SafetensorsError(`${source}: header is not valid UTF-8`, { cause: err });
  }
  if (!text.startsWith('{')) fail(source, `header does not start with '{'`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(`${source}: header is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isPlainObject(json)) fail(source, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) fail(source, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') fail(source, `__metadata__.${k} must be a string, got ${typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.set(name, parseEntry(name, entry, dataLength, source));
  }

  // No two tensors may share bytes (empty tensors share nothing).
  const ranges = [...tensors].filter(([, t]) => t.dataOffsets[1] > t.dataOffsets[0]);
  ranges.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  for (let i = 1; i < ranges.length; i++) {
    const [prevName, prev] = ranges[i - 1] as [string, TensorInfo];
    const [name, cur] = ranges[i] as [string, TensorInfo];
    if (cur.dataOffsets[0] < prev.dataOffsets[1]) {
      fail(
        source,
        `tensor '${name}' bytes [${cur.dataOffsets.join(', ')}) overlap tensor '${prevName}' bytes [${prev.dataOffsets.join(', ')})`,
      );
    }
  }
  return { tensors, metadata };
}

function parseEntry(name: string, entry: unknown, dataLength: number, source: string): TensorInfo {
  const where = `tensor '${name}'`;
  if (!isPlainObject(entry)) fail(source, `${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPES, dtype)) {
    fail(source, `${where}: unsupported dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(SAFETENSORS_DTYPES).join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    fail(source, `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    fail(source, `${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(source, `${where}: data_offsets begin ${begin} > end ${end}`);
  if (end > dataLength) fail(source, `${where}: data_offsets [${begin}, ${end}) run past the ${dataLength}-byte data region`);
  const size = SAFETENSORS_DTYPES[dtype as SafetensorsDtype].size;
  const byteLength = end - begin;
  // Multiply with a running bound so a hostile shape can never overflow into a false match.
  let numel = 1;
  if ((shape as number[]).includes(0)) numel = 0;
  else {
    for (const d of shape as number[]) {
      numel *= d;
      if (numel * size > byteLength) break;
    }
  }
  if (numel * size !== byteLength) {
    fail(
      source,
      `${where}: shape [${(shape as number[]).join(', ')}] × ${size} bytes (${dtype}) does not match its ${byteLength} bytes at [${begin}, ${end})`,
    );
  }
  return { dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], dataOffsets: [begin, end] };
}

/** Validate and parse the header of an in-memory safetensors file. */
export function parseSafetensorsHeader(bytes: Uint8Array, source: string): SafetensorsHeader {
  const n = checkHeaderLength(bytes, bytes.length, source);
  const header = parseHeaderJson(bytes.subarray(8, 8 + n), bytes.length - 8 - n, source);
  return { ...header, dataStart: 8 + n };
}

// ---------------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------------

let halfTable: Float32Array | undefined;

/** IEEE half → float32 for all 65536 bit patterns (built once; 256 KiB). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = sign * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : sign * Infinity;
    else t[h] = sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  halfTable = t;
  return t;
}

/** Decode one IEEE half-precision bit pattern. */
export function halfBitsToFloat(h: number): number {
  return halfToFloatTable()[h & 0xffff] as number;
}

/**
 * A fresh, aligned, host-endian copy of a tensor's bytes. Copying (rather than viewing) handles
 * unaligned offsets and means the result does not pin the whole file buffer.
 */
function hostBytes(bytes: Uint8Array, start: number, end: number, size: number): ArrayBuffer {
  // Not bytes.slice(): on a Node Buffer that is a view into the (pooled) file buffer, not a copy.
  const copy = new Uint8Array(end - start);
  copy.set(bytes.subarray(start, end));
  if (!LITTLE_ENDIAN && size > 1) {
    for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
  }
  return copy.buffer;
}

function decode(bytes: Uint8Array, dataStart: number, name: string, info: TensorInfo, source: string): TensorData {
  const { dtype, shape } = info;
  const { size, kind } = SAFETENSORS_DTYPES[dtype];
  const buf = hostBytes(bytes, dataStart + info.dataOffsets[0], dataStart + info.dataOffsets[1], size);
  const n = buf.byteLength / size;
  const outOfRange = (i: number, v: bigint | number): never =>
    fail(source, `tensor '${name}' (${dtype}): element ${i} = ${v} does not fit in int32`);
  let data: Float32Array | Int32Array;
  switch (dtype) {
    case 'F32':
      data = new Float32Array(buf);
      break;
    case 'F64':
      data = Float32Array.from(new Float64Array(buf));
      break;
    case 'F16': {
      const table = halfToFloatTable();
      const src = new Uint16Array(buf);
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = table[src[i] as number] as number;
      break;
    }
    case 'BF16': {
      // bf16 is the top half of a float32: shift into place and reinterpret.
      const src = new Uint16Array(buf);
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = (src[i] as number) << 16;
      data = new Float32Array(bits.buffer);
      break;
    }
    case 'I64':
    case 'U64': {
      // Each element is (lo, hi) uint32 words; it fits in int32 iff hi is lo's sign extension.
      const words = new Int32Array(buf);
      data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = words[2 * i] as number;
        const hi = words[2 * i + 1] as number;
        if (hi !== lo >> 31 || (dtype === 'U64' && lo < 0)) {
          const v = new DataView(buf).getBigUint64(8 * i, true);
          outOfRange(i, dtype === 'I64' ? BigInt.asIntN(64, v) : v);
        }
        data[i] = lo;
      }
      break;
    }
    case 'I32':
      data = new Int32Array(buf);
      break;
    case 'U32': {
      const src = new Uint32Array(buf);
      for (let i = 0; i < n; i++) if ((src[i] as number) > 0x7fffffff) outOfRange(i, src[i] as number);
      data = new Int32Array(buf);
      break;
    }
    case 'I16':
      data = Int32Array.from(new Int16Array(buf));
      break;
    case 'U16':
      data = Int32Array.from(new Uint16Array(buf));
      break;
    case 'I8':
      data = Int32Array.from(new Int8Array(buf));
      break;
    case 'U8':
      data = Int32Array.from(new Uint8Array(buf));
      break;
    case 'BOOL': {
      const src = new Uint8Array(buf);
      data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const b = src[i] as number;
        if (b > 1) fail(source, `tensor '${name}' (BOOL): element ${i} = ${b} is not 0 or 1`);
        data[i] = b;
      }
      break;
    }
  }
  return { storedDtype: dtype, dtype: kind, shape: [...shape], data };
}

/**
 * Parse a whole safetensors file held in memory. `source` names it in errors (usually its path).
 * The returned arrays are fresh copies: `bytes` can be dropped afterwards.
 */
export function parseSafetensors(bytes: Uint8Array, source: string, options: ReadOptions = {}): SafetensorsFile {
  const header = parseSafetensorsHeader(bytes, source);
  const tensors = new Map<string, TensorData>();
  for (const [name, info] of header.tensors) {
    if (options.filter && !options.filter(name)) continue;
    tensors.set(name, decode(bytes, header.dataStart, name, info, source));
  }
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, round to nearest even (numpy's npy_floatbits_to_halfbits). */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const f = u32[0] as number;
  const sign = (f >>> 16) & 0x8000;
  const fExp = f & 0x7f800000;
  if (fExp >= 0x47800000) {
    // Inf/NaN, or too large: overflow to Inf. NaN keeps a non-zero mantissa.
    if (fExp === 0x7f800000 && (f & 0x007fffff) !== 0) return sign | 0x7e00;
    return sign | 0x7c00;
  }
  if (fExp <= 0x38000000) {
    // Subnormal half (or zero).
    if (fExp < 0x33000000) return sign;
    const e = fExp >>> 23;
    let sig = (0x00800000 + (f & 0x007fffff)) >>> (113 - e);
    if ((sig & 0x3fff) !== 0x1000 || (f & 0x7ff) !== 0) sig += 0x1000;
    return sign | (sig >>> 13);
  }
  const hExp = (fExp - 0x38000000) >>> 13;
  let sig = f & 0x007fffff;
  if ((sig & 0x3fff) !== 0x1000) sig += 0x1000;
  // A carry out of the mantissa bumps the exponent (possibly to Inf): exactly right.
  return sign | ((hExp + (sig >>> 13)) & 0x7fff);
}

/** float32 → bfloat16 bits, round to nearest even; NaN stays NaN. */
export function floatToBf16Bits(value: number): number {
  f32[0] = value;
  const f = u32[0] as number;
  if ((f & 0x7f800000) === 0x7f800000 && (f & 0x007fffff) !== 0) return ((f >>> 16) | 0x0040) & 0xffff;
  return ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
}

const WRITE_SIZES: Record<WritableTensor['dtype'], number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

function encodeTensor(name: string, t: WritableTensor): Uint8Array {
  const where = `serializeSafetensors: tensor '${name}'`;
  if (!Object.hasOwn(WRITE_SIZES, t.dtype)) throw new SafetensorsError(`${where}: cannot write dtype ${String(t.dtype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(`${where}: shape must be non-negative integers, got ${JSON.stringify(t.shape)}`);
  }
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== t.data.length) {
    throw new SafetensorsError(`${where}: shape [${t.shape.join(', ')}] has ${numel} elements but data has ${t.data.length}`);
  }
  const src = t.data;
  // Fast path (checkpoints are mostly F32): on little-endian hosts the bytes are the array's own; a view
  // is enough because serializeSafetensors copies every blob into the output.
  if (LITTLE_ENDIAN && t.dtype === 'F32' && src instanceof Float32Array) {
    return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  }
  const out = new Uint8Array(numel * WRITE_SIZES[t.dtype]);
  const view = new DataView(out.buffer);
  switch (t.dtype) {
    case 'F32':
      for (let i = 0; i < numel; i++) view.setFloat32(4 * i, src[i] as number, true);
      break;
    case 'F16':
      for (let i = 0; i < numel; i++) view.setUint16(2 * i, floatToHalfBits(src[i] as number), true);
      break;
    case 'BF16':
      for (let i = 0; i < numel; i++) view.setUint16(2 * i, floatToBf16Bits(src[i] as number), true);
      break;
    case 'I32':
    case 'I64': {
      const stride = WRITE_SIZES[t.dtype];
      for (let i = 0; i < numel; i++) {
        const v = src[i] as number;
        if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
          throw new SafetensorsError(`${where}: element ${i} = ${v} is not an int32`);
        }
        view.setInt32(stride * i, v, true);
        if (stride === 8) view.setInt32(8 * i + 4, v < 0 ? -1 : 0, true);
      }
      break;
    }
  }
  return out;
}

/**
 * Serialize tensors to safetensors bytes. Data is laid out by element size (largest first) then name,
 * so every tensor is naturally aligned; header keys are sorted, `__metadata__` first, and the header is
 * padded with spaces to a multiple of 8 bytes, like the reference implementation.
 */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, WritableTensor> | Readonly<Record<string, WritableTensor>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const entries: Array<[string, WritableTensor]> =
    tensors instanceof Map ? [...tensors] : Object.entries(tensors as Record<string, WritableTensor>);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError(`serializeSafetensors: __metadata__.${k} must be a string`);
  }
  const names = new Set<string>();
  for (const [name] of entries) {
    if (name === '__metadata__') throw new SafetensorsError(`serializeSafetensors: '__metadata__' is reserved, not a tensor name`);
    if (names.has(name)) throw new SafetensorsError(`serializeSafetensors: duplicate tensor name '${name}'`);
    names.add(name);
  }
  const blobs = new Map<string, Uint8Array>();
  for (const [name, t] of entries) blobs.set(name, encodeTensor(name, t));

  const layout = [...entries].sort(
    ([an, a], [bn, b]) => WRITE_SIZES[b.dtype] - WRITE_SIZES[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0),
  );
  const offsets = new Map<string, [number, number]>();
  let offset = 0;
  for (const [name] of layout) {
    const len = (blobs.get(name) as Uint8Array).length;
    offsets.set(name, [offset, offset + len]);
    offset += len;
  }

  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  for (const [name, t] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: offsets.get(name) };
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(json.length + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }

  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (const [name] of layout) out.set(blobs.get(name) as Uint8Array, 8 + json.length + (offsets.get(name) as [number, number])[0]);
  return out;
}

/**
 * Read a tensor's values into a WritableTensor (float → F32 unless `dtype` says otherwise, int32 → I32).
 * The caller keeps ownership of `t`. Synchronous read: call outside hot loops.
 */
export function tensorToWritable(t: tf.Tensor, dtype?: WritableTensor['dtype']): WritableTensor {
  if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool') {
    throw new SafetensorsError(`tensorToWritable: cannot write a ${t.dtype} tensor`);
  }
  const values = t.dataSync();
  const isInt = t.dtype !== 'float32';
  const data = isInt ? Int32Array.from(values as Int32Array | Uint8Array) : new Float32Array(values as Float32Array);
  return { dtype: dtype ?? (isInt ? 'I32' : 'F32'), shape: [...t.shape], data };
}
