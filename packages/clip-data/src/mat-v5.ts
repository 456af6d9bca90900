import { constants as bufferConstants } from 'node:buffer';
import { inflateSync } from 'node:zlib';
import { DataError } from '@clip-ts/core';

// A reader for the part of MathWorks' "MAT-File Format" (Level 5; MATLAB -v6 and -v7) that numeric datasets
// use: top-level miMATRIX elements, plain or wrapped in miCOMPRESSED (zlib), holding real, non-sparse numeric
// arrays. Everything read from the file is bounds-checked against the bytes actually present before it is
// used, so a corrupt size field fails with a DataError instead of a huge allocation or an out-of-range read.

const MI_INT8 = 1;
const MI_INT32 = 5;
const MI_UINT32 = 6;
const MI_MATRIX = 14;
const MI_COMPRESSED = 15;
const HEADER_BYTES = 128;
const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
/** Deflate cannot compress better than about 1032:1, so a valid stream never inflates beyond this. */
const MAX_DEFLATE_RATIO = 1032;

/** Storage types of a numeric array's data (the type in its data element's tag). */
export type MatStorage = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'single' | 'double' | 'int64' | 'uint64';
/** MATLAB classes this reader accepts; a double array may be stored in a smaller integer type. */
export type MatClass = MatStorage;

const STORAGE: Readonly<Record<number, { name: MatStorage; size: number }>> = {
  1: { name: 'int8', size: 1 },
  2: { name: 'uint8', size: 1 },
  3: { name: 'int16', size: 2 },
  4: { name: 'uint16', size: 2 },
  5: { name: 'int32', size: 4 },
  6: { name: 'uint32', size: 4 },
  7: { name: 'single', size: 4 },
  9: { name: 'double', size: 8 },
  12: { name: 'int64', size: 8 },
  13: { name: 'uint64', size: 8 },
};
const NUMERIC_CLASSES: Readonly<Record<number, MatClass>> = {
  6: 'double',
  7: 'single',
  8: 'int8',
  9: 'uint8',
  10: 'int16',
  11: 'uint16',
  12: 'int32',
  13: 'uint32',
  14: 'int64',
  15: 'uint64',
};
const OTHER_CLASSES: Readonly<Record<number, string>> = { 1: 'cell', 2: 'struct', 3: 'object', 4: 'char', 5: 'sparse', 16: 'function handle', 17: 'opaque' };

/** One real numeric array of a MAT file. */
export interface MatArray {
  name: string;
  className: MatClass;
  /** MATLAB dimensions (at least two); the data is column-major: the first index varies fastest. */
  dims: number[];
  storage: MatStorage;
  /**
   * The stored values, in the file's byte order. A view into the file's bytes (or a compressed element's
   * inflated bytes), not a copy: it keeps that buffer alive and belongs to whoever holds the MatArray.
   */
  bytes: Uint8Array;
  littleEndian: boolean;
}

/** Describes a position for error messages: the file, and where in it (or in which compressed element). */
type Where = (offset: number) => string;

interface Tag {
  type: number;
  size: number;
  /** Start of the element's data. */
  data: number;
  /** Start of the next element (after padding). */
  next: number;
}

class Reader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly le: boolean,
    readonly where: Where,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u32(off: number): number {
    return this.view.getUint32(off, this.le);
  }
  i32(off: number): number {
    return this.view.getInt32(off, this.le);
  }
  fail(off: number, message: string): never {
    throw new DataError(`${this.where(off)}: ${message}`);
  }

  /** The tag at `off`, checked to lie with its data inside [off, end). */
  tag(off: number, end: number, what: string): Tag {
    if (end - off < 8) this.fail(off, `${what}: truncated data element tag (${end - off} bytes left, 8 needed)`);
    const first = this.u32(off);
    // Small data element: byte count in the upper 16 bits, type in the lower, data in the next 4 bytes.
    if (first >>> 16 !== 0) {
      const size = first >>> 16;
      if (size > 4) this.fail(off, `${what}: small data element claims ${size} bytes (at most 4)`);
      return { type: first & 0xffff, size, data: off + 4, next: off + 8 };
    }
    const size = this.u32(off + 4);
    const data = off + 8;
    if (size > end - data) this.fail(off, `${what}: element of type ${first} claims ${size} bytes but only ${end - data} remain`);
    // Elements are padded to 8 bytes; a writer may omit the padding after the last one.
    return { type: first, size, data, next: Math.min(data + size + ((8 - (size % 8)) % 8), end) };
  }
}

function isHdf5(bytes: Uint8Array, at: number): boolean {
  return bytes.length >= at + 8 && HDF5_SIGNATURE.every((b, i) => bytes[at + i] === b);
}

function readMatrix(r: Reader, tag: Tag, arrays: MatArray[]): void {
  const end = tag.data + tag.size;
  const flags = r.tag(tag.data, end, 'array flags');
  if (flags.type !== MI_UINT32 || flags.size !== 8) r.fail(tag.data, `array flags: expected an 8-byte miUINT32 element, found type ${flags.type} with ${flags.size} bytes`);
  const word = r.u32(flags.data);
  const classId = word & 0xff;
  const dimsTag = r.tag(flags.next, end, 'dimensions');
  if (dimsTag.type !== MI_INT32 || dimsTag.size % 4 !== 0 || dimsTag.size < 8) {
    r.fail(flags.next, `dimensions: expected miINT32 with at least 2 values, found type ${dimsTag.type} with ${dimsTag.size} bytes`);
  }
  const dims: number[] = [];
  for (let o = dimsTag.data; o < dimsTag.data + dimsTag.size; o += 4) {
    const d = r.i32(o);
    if (d < 0) r.fail(o, `dimensions: negative size ${d}`);
    dims.push(d);
  }
  const nameTag = r.tag(dimsTag.next, end, 'array name');
  if (nameTag.type !== MI_INT8) r.fail(dimsTag.next, `array name: expected miINT8, found type ${nameTag.type}`);
  const name = Buffer.from(r.bytes.buffer, r.bytes.byteOffset + nameTag.data, nameTag.size).toString('latin1');
  const label = `variable '${name}'`;
  const className = NUMERIC_CLASSES[classId];
  if (className === undefined) {
    const other = OTHER_CLASSES[classId];
    r.fail(tag.data, `${label}: ${other === undefined ? `unknown array class ${classId}` : `${other} arrays are not supported`} (only real numeric arrays are)`);
  }
  if ((word & 0x0800) !== 0) r.fail(tag.data, `${label}: complex arrays are not supported`);
  const realTag = r.tag(nameTag.next, end, `${label}: real part`);
  const storage = STORAGE[realTag.type];
  if (storage === undefined) r.fail(nameTag.next, `${label}: unsupported data type ${realTag.type} for numeric values`);
  // Compared as a product of doubles: a huge claimed shape simply fails to match the bytes present.
  const count = dims.reduce((a, b) => a * b, 1);
  if (realTag.size !== count * storage.size) {
    r.fail(nameTag.next, `${label}: dimensions [${dims.join(', ')}] need ${count * storage.size} bytes of ${storage.name}, the data element holds ${realTag.size}`);
  }
  if (arrays.some((a) => a.name === name)) r.fail(tag.data, `${label} appears twice`);
  arrays.push({ name, className, dims, storage: storage.name, bytes: r.bytes.subarray(realTag.data, realTag.data + realTag.size), littleEndian: r.le });
}

function inflateElement(r: Reader, tag: Tag): Uint8Array {
  const compressed = r.bytes.subarray(tag.data, tag.data + tag.size);
  try {
    return inflateSync(compressed, { maxOutputLength: Math.min(bufferConstants.MAX_LENGTH, compressed.length * MAX_DEFLATE_RATIO + 1024) });
  } catch (err) {
    return r.fail(tag.data - 8, `compressed element is corrupt or truncated (zlib: ${err instanceof Error ? err.message : String(err)})`);
  }
}

/**
 * The numeric arrays of a MAT v5 file, in file order. `file` names the file in error messages. The arrays'
 * bytes view `bytes` (plain elements) or fresh inflated buffers (compressed ones); the caller owns them all.
 * Anything else (v4 or v7.3/HDF5 files, cell/struct/char/sparse/complex arrays, corrupt or truncated
 * elements) is a DataError naming the file and the byte offset.
 */
export function readMatV5(bytes: Uint8Array, file: string): MatArray[] {
  const at: Where = (off) => `${file}: offset ${off}`;
  if (isHdf5(bytes, 0) || isHdf5(bytes, 512)) {
    throw new DataError(`${file}: a MATLAB v7.3 (HDF5) MAT-file; only v5/v7 MAT-files can be read (re-save with save(..., '-v7'))`);
  }
  if (bytes.length < HEADER_BYTES) throw new DataError(`${at(0)}: ${bytes.length} bytes is too short for a MAT v5 header (128 bytes; truncated?)`);
  const endian = String.fromCharCode(bytes[126] as number, bytes[127] as number);
  if (endian !== 'IM' && endian !== 'MI') {
    throw new DataError(`${at(126)}: not a MAT v5 file (endian indicator ${JSON.stringify(endian)}, expected "IM" or "MI")`);
  }
  const r = new Reader(bytes, endian === 'IM', at);
  const version = new DataView(bytes.buffer, bytes.byteOffset + 124, 2).getUint16(0, r.le);
  if (version === 0x0200) throw new DataError(`${at(124)}: a MATLAB v7.3 (HDF5) MAT-file header; only v5/v7 MAT-files can be read (re-save with save(..., '-v7'))`);
  if (version !== 0x0100) throw new DataError(`${at(124)}: unsupported MAT-file version 0x${version.toString(16).padStart(4, '0')} (expected 0x0100)`);

  const arrays: MatArray[] = [];
  let off = HEADER_BYTES;
  while (off < bytes.length) {
    const tag = r.tag(off, bytes.length, 'data element');
    if (tag.type === MI_MATRIX) {
      readMatrix(r, tag, arrays);
      off = tag.next;
    } else if (tag.type === MI_COMPRESSED) {
      const inner = new Reader(inflateElement(r, tag), r.le, (o) => `${file}: compressed element at offset ${off}, inflated byte ${o}`);
      const t = inner.tag(0, inner.bytes.length, 'data element');
      if (t.type !== MI_MATRIX) inner.fail(0, `expected an miMATRIX element inside miCOMPRESSED, found type ${t.type}`);
      readMatrix(inner, t, arrays);
      // Compressed elements are not padded.
      off = tag.data + tag.size;
    } else {
      r.fail(off, `unsupported top-level data element type ${tag.type} (expected miMATRIX 14 or miCOMPRESSED 15)`);
    }
  }
  return arrays;
}

/** The values of a numeric array as doubles, in MATLAB's column-major order. A new array, owned by the caller. */
export function matNumbers(a: MatArray): Float64Array {
  const v = new DataView(a.bytes.buffer, a.bytes.byteOffset, a.bytes.byteLength);
  const le = a.littleEndian;
  const read: Record<MatStorage, [number, (o: number) => number]> = {
    int8: [1, (o) => v.getInt8(o)],
    uint8: [1, (o) => v.getUint8(o)],
    int16: [2, (o) => v.getInt16(o, le)],
    uint16: [2, (o) => v.getUint16(o, le)],
    int32: [4, (o) => v.getInt32(o, le)],
    uint32: [4, (o) => v.getUint32(o, le)],
    single: [4, (o) => v.getFloat32(o, le)],
    double: [8, (o) => v.getFloat64(o, le)],
    int64: [8, (o) => Number(v.getBigInt64(o, le))],
    uint64: [8, (o) => Number(v.getBigUint64(o, le))],
  };
  const [size, get] = read[a.storage];
  const out = new Float64Array(a.bytes.byteLength / size);
  for (let i = 0; i < out.length; i++) out[i] = get(i * size);
  return out;
}
