import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { ClipError, initBackend, tokenLengthStats } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HFTokenizer, toTensors } from '../src/tokenizer.js';
import { loadTokenizer, loadTokenizerFiles } from '../src/tokenizer-files.js';

const FIX = fileURLToPath(new URL('./fixtures/tokenizer/', import.meta.url));

interface RefCase {
  text: string;
  ids: number[];
}

let tok: HFTokenizer;
let tmp: string;

beforeAll(async () => {
  await initBackend('cpu');
  tok = await loadTokenizer(FIX);
  tmp = await mkdtemp(join(tmpdir(), 'clip-tok-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('HFTokenizer on the real bert-base-uncased tokenizer.json', () => {
  it('encodes the HF docs example exactly', () => {
    expect(tok.encodeOne('Hello, my dog is cute')).toEqual([101, 7592, 1010, 2026, 3899, 2003, 10140, 102]);
    expect(tok.vocabSize).toBe(30522);
    expect(tok.padTokenId).toBe(0);
    expect(tok.numSpecialTokens).toBe(2);
  });

  it('matches the reference BasicTokenizer + WordPiece on tricky text (accents, CJK, controls, long words)', async () => {
    const ref = JSON.parse(await readFile(join(FIX, 'wordpiece-ref.json'), 'utf8')) as { cases: RefCase[] };
    expect(ref.cases.length).toBeGreaterThan(10);
    for (const c of ref.cases) expect(tok.encodeOne(c.text), JSON.stringify(c.text)).toEqual(c.ids);
  });

  it('pads with [PAD]=0 and mask 0, row-major [batch, maxLength]', () => {
    const enc = tok.encode(['Hello, my dog is cute', 'a dog'], 12);
    expect(enc.batchSize).toBe(2);
    expect(enc.seqLength).toBe(12);
    expect(Array.from(enc.inputIds)).toEqual([
      101, 7592, 1010, 2026, 3899, 2003, 10140, 102, 0, 0, 0, 0, 101, 1037, 3899, 102, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(Array.from(enc.attentionMask)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('truncates like HF truncation=True: the body is cut and [SEP] stays last', () => {
    const enc = tok.encode(['Hello, my dog is cute'], 5);
    expect(Array.from(enc.inputIds)).toEqual([101, 7592, 1010, 2026, 102]);
    expect(Array.from(enc.attentionMask)).toEqual([1, 1, 1, 1, 1]);
    // Exactly fitting: no truncation, no padding.
    expect(Array.from(tok.encode(['Hello, my dog is cute'], 8).inputIds)).toEqual([101, 7592, 1010, 2026, 3899, 2003, 10140, 102]);
  });

  it('reproduces the distilbert-tiny fixture ids/mask (captions.json padded to 16)', async () => {
    const dir = join(FIX, 'distilbert-tiny-io');
    const captions = JSON.parse(await readFile(join(dir, 'captions.json'), 'utf8')) as { captions: string[]; max_length: number };
    const expected = await readIoIds(join(dir, 'io.safetensors'));
    expect(expected.inputIds.length).toBe(4 * 16);
    const enc = tok.encode(captions.captions, captions.max_length);
    expect(Array.from(enc.inputIds)).toEqual(expected.inputIds);
    expect(Array.from(enc.attentionMask)).toEqual(expected.attentionMask);
  });

  it('tokenLengths counts special tokens without truncating; stats summarise them', () => {
    const lengths = tok.tokenLengths(['Hello, my dog is cute', '', 'a dog', 'x '.repeat(60)]);
    expect(lengths).toEqual([8, 2, 4, 62]);
    const s = tokenLengthStats(lengths);
    expect(s).toMatchObject({ count: 4, min: 2, max: 62, mean: 19, median: 6 });
    // numpy.percentile([2,4,8,62], 90) == 45.8
    expect(s.p90).toBeCloseTo(45.8, 10);
  });

  it('toTensors / tokenize give int32 [B, L] tensors that the caller owns', () => {
    const before = tf.memory().numTensors;
    const t = tok.tokenize(['Hello, my dog is cute', 'a dog'], 10);
    expect(t.inputIds.shape).toEqual([2, 10]);
    expect(t.inputIds.dtype).toBe('int32');
    expect(t.attentionMask.dtype).toBe('int32');
    expect(Array.from(t.attentionMask.dataSync())).toEqual(Array.from(tok.encode(['Hello, my dog is cute', 'a dog'], 10).attentionMask));
    tf.dispose([t.inputIds, t.attentionMask]);
    for (let i = 0; i < 3; i++) {
      const u = toTensors(tok.encode(['a'], 4));
      tf.dispose([u.inputIds, u.attentionMask]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('fingerprint is stable and changes with the vocabulary', async () => {
    const again = await loadTokenizer(FIX);
    expect(again.fingerprint()).toBe(tok.fingerprint());
    const json = JSON.parse(await readFile(join(FIX, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
    json.model.vocab['zzzznewtoken'] = 30522;
    const p = join(tmp, 'changed.json');
    await writeFile(p, JSON.stringify(json));
    const changed = await loadTokenizerFiles(p);
    expect(changed.fingerprint()).not.toBe(tok.fingerprint());
  });

  it('rejects a maxLength that cannot hold the special tokens', () => {
    expect(() => tok.encode(['a'], 2)).toThrow(/maxLength/);
    expect(() => tok.encode(['a'], 3.5)).toThrow(ClipError);
  });
});

describe('tokenizer errors name the file', () => {
  it('missing tokenizer.json', async () => {
    const err = await loadTokenizer(join(tmp, 'nope')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClipError);
    expect((err as ClipError).code).toBe('TOKENIZER');
    expect((err as Error).message).toContain(join(tmp, 'nope', 'tokenizer.json'));
  });

  it('invalid JSON', async () => {
    const dir = join(tmp, 'badjson');
    await rm(dir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await writeFile(join(dir, 'tokenizer.json'), '{"model": ');
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer\.json: invalid JSON/);
  });

  it('valid JSON that is not a tokenizer', async () => {
    const p = join(tmp, 'notok.json');
    await writeFile(p, '{"hello": 1}');
    await expect(loadTokenizerFiles(p)).rejects.toThrow(/notok\.json: not a tokenizer\.json[\s\S]*model/);
  });

  it('invalid tokenizer_config.json names that file', async () => {
    const dir = join(tmp, 'badcfg');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
    await writeFile(join(dir, 'tokenizer.json'), await readFile(join(FIX, 'tokenizer.json')));
    await writeFile(join(dir, 'tokenizer_config.json'), 'not json');
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer_config\.json: invalid JSON/);
  });
});

/** ids/mask from the fixture's io.safetensors (int64 on disk). */
async function readIoIds(path: string): Promise<{ inputIds: number[]; attentionMask: number[] }> {
  const { tensors } = await readSafetensors(path);
  const get = (k: string): number[] => {
    const t = tensors.get(k);
    if (!t) throw new Error(`${path}: no ${k}`);
    return Array.from(t.data);
  };
  return { inputIds: get('input_ids'), attentionMask: get('attention_mask') };
}
