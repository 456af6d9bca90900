import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SafetensorsError,
  floatToBf16Bits,
  floatToHalfBits,
  halfBitsToFloat,
  initBackend,
  parseSafetensors,
  serializeSafetensors,
  tensorToWritable,
  type WritableTensor,
} from '../src/index.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../src/node.js';

const fixture = (p: string): string => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));

let dir: string;
beforeAll(async () => {
  await initBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'clip-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Build a file by hand: header object (serialised verbatim) + data bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), pad = true): Uint8Array {
  let json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  if (pad && json.length % 8 !== 0) {
    const p = new Uint8Array(json.length + (8 - (json.length % 8))).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors round trips', () => {
  const cases: Array<[WritableTensor['dtype'], Float32Array | Int32Array]> = [
    ['F32', new Float32Array([1.5, -2, 3e-8, Infinity, -0, 65504, NaN])],
    // Values exactly representable in half / bf16 come back unchanged.
    ['F16', new Float32Array([0, -0, 1, -2.5, 65504, 2 ** -24, 2 ** -14, 0.099975586, Infinity, -Infinity])],
    ['BF16', new Float32Array([0, 1, -2.5, 3.140625, 1e-38 * 0 + 2 ** -126, -3.3895313892515355e38, Infinity])],
    ['I32', new Int32Array([0, 1, -1, 2147483647, -2147483648])],
    ['I64', new Int32Array([0, 1, -1, 2147483647, -2147483648])],
  ];
  for (const [dtype, data] of cases) {
    it(`${dtype}`, () => {
      const bytes = serializeSafetensors({ t: { dtype, shape: [data.length], data } }, { format: 'pt' });
      const file = parseSafetensors(bytes, 'mem');
      const t = file.tensors.get('t');
      expect(t?.storedDtype).toBe(dtype);
      expect(t?.dtype).toBe(dtype.startsWith('I') ? 'int32' : 'float32');
      expect(t?.shape).toEqual([data.length]);
      expect(Array.from(t?.data ?? [])).toEqual(Array.from(data));
      expect(file.metadata).toEqual({ format: 'pt' });
    });
  }

  it('writes a spec-conformant layout: aligned padded header, sorted keys, aligned data', () => {
    const bytes = serializeSafetensors(
      new Map<string, WritableTensor>([
        ['z.half', { dtype: 'F16', shape: [3], data: new Float32Array([1, 2, 3]) }],
        ['a.ids', { dtype: 'I64', shape: [1, 2], data: new Int32Array([5, -6]) }],
        ['m.w', { dtype: 'F32', shape: [2, 0], data: new Float32Array(0) }],
        ['b.scalar', { dtype: 'F32', shape: [], data: new Float32Array([7]) }],
      ]),
      { format: 'pt' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text).toMatch(/^\{"__metadata__":\{"format":"pt"\},"a\.ids":.*"b\.scalar":.*"m\.w":.*"z\.half":.*\} *$/);
    const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    for (const [name, e] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const size = { F16: 2, F32: 4, I64: 8 }[e.dtype] as number;
      expect(e.data_offsets[0] % size, name).toBe(0);
    }
    const back = parseSafetensors(bytes, 'mem');
    expect(Array.from(back.tensors.get('a.ids')?.data ?? [])).toEqual([5, -6]);
    expect(back.tensors.get('b.scalar')?.shape).toEqual([]);
    expect(back.tensors.get('m.w')?.shape).toEqual([2, 0]);
  });

  it('writes atomically and reads back from disk, header-only too', async () => {
    const path = join(dir, 'w.safetensors');
    await writeSafetensors(path, { x: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } });
    await writeSafetensors(path, { y: { dtype: 'BF16', shape: [2], data: new Float32Array([1, 2]) } });
    const file = await readSafetensors(path);
    expect([...file.tensors.keys()]).toEqual(['y']);
    const header = await readSafetensorsHeader(path);
    expect(header.tensors.get('y')).toEqual({ dtype: 'BF16', shape: [2], dataOffsets: [0, 4] });
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const filtered = await readSafetensors(path, { filter: (n) => n !== 'y' });
    expect(filtered.tensors.size).toBe(0);
  });

  it('tensorToWritable copies values and leaves the tensor to the caller', () => {
    const t = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const w = tensorToWritable(t);
    expect(w).toEqual({ dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    expect(t.isDisposed).toBe(false);
    t.dispose();
    const i = tf.tensor1d([3, -4], 'int32');
    expect(tensorToWritable(i, 'I64')).toEqual({ dtype: 'I64', shape: [2], data: new Int32Array([3, -4]) });
    i.dispose();
  });

  it('refuses to write bad tensors', () => {
    const bad = (t: WritableTensor): (() => Uint8Array) => () => serializeSafetensors({ bad: t });
    expect(bad({ dtype: 'F32', shape: [NaN], data: new Float32Array(1) })).toThrow(/tensor 'bad'.*shape/);
    expect(bad({ dtype: 'F32', shape: [3], data: new Float32Array(2) })).toThrow(SafetensorsError);
    expect(bad({ dtype: 'I32', shape: [1], data: new Float32Array([1.5]) })).toThrow(/not an int32/);
    expect(() => serializeSafetensors({ __metadata__: { dtype: 'F32', shape: [0], data: new Float32Array(0) } })).toThrow(
      /reserved/,
    );
  });
});

describe('half / bfloat16 encoding', () => {
  it('matches torch on tricky values (ties to even, subnormals, overflow)', async () => {
    const ref = JSON.parse(await readFile(fixture('safetensors/dtypes.json'), 'utf8')) as {
      _rounding: { f32_bits: number[]; f16_bits: number[]; bf16_bits: number[] };
    };
    const { f32_bits, f16_bits, bf16_bits } = ref._rounding;
    const f = new Float32Array(new Uint32Array(f32_bits).buffer);
    expect(Array.from(f, floatToHalfBits)).toEqual(f16_bits);
    expect(Array.from(f, floatToBf16Bits)).toEqual(bf16_bits);
  });

  it('half: every finite pattern round-trips, and random floats go to the nearest half (ties to even)', () => {
    const finite: Array<[number, number]> = [];
    for (let h = 0; h < 0x7c00; h++) finite.push([halfBitsToFloat(h), h]);
    for (const [v, h] of finite) {
      expect(floatToHalfBits(v)).toBe(h);
      expect(floatToHalfBits(-v)).toBe(h | 0x8000);
    }
    expect(Number.isNaN(halfBitsToFloat(floatToHalfBits(NaN)))).toBe(true);
    const values = finite.map(([v]) => v); // ascending
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: 0, max: 65519 }), (x) => {
        // Nearest by brute force: binary search for neighbours.
        let lo = 0;
        let hi = values.length - 1;
        while (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          if ((values[mid] as number) <= x) lo = mid;
          else hi = mid;
        }
        const a = values[lo] as number;
        const b = values[hi] as number;
        const expected = x - a < b - x ? lo : x - a > b - x ? hi : lo % 2 === 0 ? lo : hi;
        const got = floatToHalfBits(x);
        return x === a ? got === lo : got === expected;
      }),
      { numRuns: 5000 },
    );
  });
});

describe('safetensors decoding of files written by other tools', () => {
  it('decodes every dtype from a file written with PyTorch (unaligned offsets included)', async () => {
    const expected = JSON.parse(await readFile(fixture('safetensors/dtypes.json'), 'utf8')) as Record<
      string,
      { shape: number[]; values: Array<number | 'Infinity'> }
    >;
    const file = await readSafetensors(fixture('safetensors/dtypes.safetensors'));
    expect(file.metadata).toEqual({ format: 'pt', source: 'make_dtypes.py' });
    const names = Object.keys(expected).filter((k) => !k.startsWith('_'));
    expect([...file.tensors.keys()].sort()).toEqual(names.sort());
    for (const name of names) {
      const t = file.tensors.get(name);
      const e = expected[name] as { shape: number[]; values: Array<number | 'Infinity'> };
      expect(t?.shape, name).toEqual(e.shape);
      const want = e.values.map((v) => (v === 'Infinity' ? Infinity : v));
      // Floats are compared after float32 rounding (F64 is widened... narrowed to float32).
      expect(Array.from(t?.data ?? []), name).toEqual(
        t?.dtype === 'float32' ? Array.from(new Float32Array(want)) : want,
      );
    }
    expect(file.tensors.get('e_i64')?.storedDtype).toBe('I64');
    expect(file.tensors.get('e_i64')?.dtype).toBe('int32');
  });

  it('reads the vendored clip-loss fixture (real-world file from the Python generator)', async () => {
    const file = await readSafetensors(fixture('clip-loss/io.safetensors'));
    expect(file.tensors.get('image_embeds')?.shape).toEqual([8, 16]);
    expect(file.tensors.get('logits_per_image')?.shape).toEqual([8, 8]);
    expect(file.tensors.get('logit_scale')?.data[0]).toBeCloseTo(Math.log(1 / 0.07), 6);
    for (const t of file.tensors.values()) expect(t.storedDtype).toBe('F32');
  });

  it('I64 values outside int32 are an error naming the file, tensor and element', () => {
    const data = new Uint8Array(16);
    const v = new DataView(data.buffer);
    v.setBigInt64(0, 1n, true);
    v.setBigInt64(8, 2n ** 31n, true);
    const bytes = rawFile({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, data);
    expect(() => parseSafetensors(bytes, 'big.safetensors')).toThrow(
      /big\.safetensors: tensor 'ids' \(I64\): element 1 = 2147483648 does not fit in int32/,
    );
  });
});

describe('safetensors header validation', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty file', new Uint8Array(0), /f\.st: file is 0 bytes/],
    ['header longer than file', rawFile(ok, new Uint8Array(8)).subarray(0, 20), /exceeds/],
    ['not JSON', rawFile('{"w": ', new Uint8Array(0)), /not valid JSON/],
    ['not an object', rawFile('[1,2]    '), /start with '\{'/],
    ['unknown dtype', rawFile({ w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)), /tensor 'w': unsupported dtype "F8_E4M3"/],
    ['negative dim', rawFile({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor 'w': shape/],
    ['fractional dim', rawFile({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor 'w': shape/],
    ['offsets past data', rawFile(ok, new Uint8Array(4)), /tensor 'w': data_offsets \[0, 8\) run past the 4-byte/],
    ['begin > end', rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, new Uint8Array(8)), /begin 8 > end 0/],
    ['size mismatch', rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor 'w': shape \[3\]/],
    ['huge shape', rawFile({ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor 'w': shape/],
    [
      'overlap',
      rawFile(
        { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } },
        new Uint8Array(8),
      ),
      /tensor 'b' bytes \[4, 8\) overlap tensor 'a'/,
    ],
    ['bad metadata', rawFile({ __metadata__: { n: 1 } }), /__metadata__\.n must be a string/],
    ['bad BOOL byte', rawFile({ b: { dtype: 'BOOL', shape: [1], data_offsets: [0, 1] } }, new Uint8Array([2])), /tensor 'b' \(BOOL\)/],
    ['invalid UTF-8', rawFile('{"\xff":1}'.replace('\xff', '\ud800')), /./],
  ];
  for (const [what, bytes, msg] of cases) {
    it(what, () => {
      expect(() => parseSafetensors(bytes, 'f.st')).toThrow(SafetensorsError);
      expect(() => parseSafetensors(bytes, 'f.st')).toThrow(msg);
    });
  }

  it('caps the header length without allocating it', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 63n, true);
    expect(() => parseSafetensors(bytes, 'f.st')).toThrow(/header length 9223372036854775808 exceeds/);
  });

  it('readSafetensorsHeader validates without reading the data, and names missing files', async () => {
    const path = join(dir, 'trunc.safetensors');
    await writeFile(path, rawFile(ok, new Uint8Array(8)).subarray(0, 12));
    await expect(readSafetensorsHeader(path)).rejects.toThrow(/trunc\.safetensors: header length \d+ exceeds/);
    await expect(readSafetensors(join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: cannot read/);
    await expect(readSafetensorsHeader(join(dir, 'nope.safetensors'))).rejects.toThrow(SafetensorsError);
  });
});

describe('fuzzing the reader with corrupted files', () => {
  const valid = serializeSafetensors(
    {
      'a.weight': { dtype: 'F32', shape: [3, 4], data: new Float32Array(12).map((_, i) => i / 3) },
      'b.bias': { dtype: 'F16', shape: [5], data: new Float32Array([1, 2, 3, 4, 5]) },
      'c.emb': { dtype: 'BF16', shape: [2, 3], data: new Float32Array(6).fill(0.5) },
      'd.ids': { dtype: 'I64', shape: [4], data: new Int32Array([1, -2, 3, -4]) },
      'e.i32': { dtype: 'I32', shape: [1, 1], data: new Int32Array([9]) },
    },
    { format: 'pt' },
  );
  const headerLen = Number(new DataView(valid.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(valid.subarray(8, 8 + headerLen))) as Record<string, Record<string, unknown>>;
  const dataLen = valid.length - 8 - headerLen;

  /** Parse must either succeed or throw SafetensorsError; anything else fails the property. */
  const onlySafetensorsErrors = (bytes: Uint8Array): boolean => {
    try {
      parseSafetensors(bytes, 'fuzz.safetensors');
      return true;
    } catch (err) {
      if (err instanceof SafetensorsError && err.message.startsWith('fuzz.safetensors: ')) return true;
      throw err;
    }
  };

  it('byte flips and truncations', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.option(fc.nat(valid.length), { nil: undefined }),
        (flips, cut) => {
          const bytes = valid.slice(0, cut ?? valid.length);
          for (const [i, b] of flips) if (i < bytes.length) bytes[i] = b;
          return onlySafetensorsErrors(bytes);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('length-prefix mutations (including huge values)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (n) => {
        const bytes = valid.slice();
        new DataView(bytes.buffer).setBigUint64(0, n, true);
        return onlySafetensorsErrors(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('header mutations: dtypes, shapes, offsets, overlaps, junk values', () => {
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    const junk = fc.oneof(
      fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL', 'F8_E5M2', 'f32', '', '__proto__'),
      fc.integer({ min: -5, max: dataLen + 8 }),
      fc.constantFrom(2 ** 53, 2 ** 64, -0, 1.5, NaN, null, true, 1e308),
      fc.array(fc.integer({ min: -2, max: dataLen + 2 }), { maxLength: 4 }),
      fc.array(fc.constantFrom(0, 1, 2 ** 31, 2 ** 53, -1, 1e300), { maxLength: 5 }),
      fc.dictionary(fc.string({ maxLength: 3 }), fc.integer()),
      fc.string({ maxLength: 6 }),
    );
    const mutation = fc.record({
      name: fc.constantFrom(...names, '__metadata__', '__proto__', 'new'),
      field: fc.constantFrom('dtype', 'shape', 'data_offsets', 'extra', 'whole'),
      value: junk,
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (muts, keepData) => {
        const h = structuredClone(header) as Record<string, unknown>;
        for (const { name, field, value } of muts) {
          if (field === 'whole') h[name] = value;
          else {
            const entry = h[name];
            const obj = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>) : {};
            obj[field] = value;
            h[name] = obj;
          }
        }
        const data = keepData ? valid.subarray(8 + headerLen) : valid.subarray(8 + headerLen, 8 + headerLen + 7);
        return onlySafetensorsErrors(rawFile(JSON.stringify(h), data, false));
      }),
      { numRuns: 3000 },
    );
  });

  it('offset shuffles: overlapping, reversed and out-of-range ranges', () => {
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -1, max: dataLen + 1 }), fc.integer({ min: -1, max: dataLen + 1 })), {
          minLength: names.length,
          maxLength: names.length,
        }),
        (ranges) => {
          const h = structuredClone(header);
          names.forEach((n, i) => ((h[n] as Record<string, unknown>).data_offsets = ranges[i]));
          return onlySafetensorsErrors(rawFile(h, valid.subarray(8 + headerLen)));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
