import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@clip-ts/core';
import { readSafetensors } from '@clip-ts/core/node';
import { CLIP } from '@clip-ts/encoders';
import { runCli } from '../src/cli.js';
import { captureIO } from './helpers/tiny-checkpoint.js';

/** `clip zeroshot` / `clip embed` on an HF CLIP repo: the clip-tiny fixture dir, and the same by Hub id. */

const HF = fileURLToPath(new URL('../../clip-encoders/test/fixtures/hf/clip-tiny', import.meta.url));
const IMAGES = ['image_0.png', 'image_1.png', 'image_2.jpg'].map((f) => join(HF, f));
const COMMIT = 'c11b000000000000000000000000000000000002';

let dir: string;
let server: Server;
let endpoint: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-cli-pretrained-'));
  // An image folder of the fixture's images: two classes, named after what the captions say.
  for (const [cls, files] of [['cat', [IMAGES[0], IMAGES[2]]], ['dog', [IMAGES[1]]]] as const) {
    await mkdir(join(dir, 'folder', cls), { recursive: true });
    for (const f of files) await copyFile(f as string, join(dir, 'folder', cls, (f as string).split('/').pop() as string));
  }
  const files = new Map<string, Buffer>();
  for (const f of await readdir(HF)) files.set(f, await readFile(join(HF, f)));
  server = createServer((req, res) => {
    const m = /^\/test\/clip-tiny\/resolve\/main\/([^/]+)$/.exec(req.url ?? '');
    const body = m ? files.get(m[1] as string) : undefined;
    if (!body) res.writeHead(404).end('Entry not found');
    else res.writeHead(200, { 'content-length': body.length, 'x-repo-commit': COMMIT }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await initBackend('cpu');
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

/** Top-1 accuracy of CLIP.zeroShot itself on the folder, to check the command against. */
async function expectedTop1(templates: string[]): Promise<number> {
  const clip = await CLIP.fromPretrained(HF);
  try {
    const images = [join(dir, 'folder', 'cat', 'image_0.png'), join(dir, 'folder', 'cat', 'image_2.jpg'), join(dir, 'folder', 'dog', 'image_1.png')];
    const truth = ['cat', 'cat', 'dog'];
    const preds = await clip.zeroShot(images, ['cat', 'dog'], { templates });
    return preds.filter((p, i) => p.labels[0] === truth[i]).length / images.length;
  } finally {
    clip.dispose();
  }
}

describe('clip commands on an HF CLIP repo', () => {
  it('clip zeroshot --checkpoint <HF CLIP dir> scores an image folder as CLIP.zeroShot does', async () => {
    const io = captureIO();
    const code = await runCli(['zeroshot', '--checkpoint', HF, '--dataset', 'imagefolder', '--root', join(dir, 'folder'), '--template', 'a photo of a {}.', '--json', '--backend', 'cpu'], io);
    expect(io.err()).not.toMatch(/error/);
    expect(code).toBe(0);
    const r = JSON.parse(io.out()) as { images: number; scores: Array<{ topK: Record<string, number> }> };
    expect(r.images).toBe(3);
    expect(r.scores[0]?.topK['1']).toBeCloseTo(await expectedTop1(['a photo of a {}.']), 10);
  });

  it('clip embed --checkpoint <HF CLIP dir> writes the embeddings HF computes for the images and captions', async () => {
    const ref = (await readSafetensors(join(HF, 'io.safetensors'))).tensors;
    const captions = (JSON.parse(await readFile(join(HF, 'captions.json'), 'utf8')) as { captions: string[] }).captions;
    for (const [flag, inputs, key] of [['--images', IMAGES, 'image_embeds_normalized'], ['--texts', captions, 'text_embeds_normalized']] as const) {
      const out = join(dir, `${key}.safetensors`);
      expect(await runCli(['embed', '--checkpoint', HF, flag, ...inputs, '--out', out, '--backend', 'cpu'], captureIO())).toBe(0);
      const got = (await readSafetensors(out)).tensors.get('embeddings');
      const want = ref.get(key);
      expect(got?.shape).toEqual(want?.shape);
      const diff = Math.max(...Array.from(got?.data ?? [], (v, i) => Math.abs(v - (want?.data[i] as number))));
      // Images: the default JPEG decoder (libjpeg-turbo's fast IDCT, within 6 grey levels of Pillow after
      // preprocessing: encoders' image-pipeline.test.ts) moves this tiny model's embeddings by ~0.005;
      // decoder 'sharp' is Pillow's exactly (encoders' clip-preprocess.test.ts). Texts stay at 1e-4.
      expect(diff).toBeLessThan(key === 'image_embeds_normalized' ? 1e-2 : 1e-4);
    }
  });

  it('clip embed --decoder sharp gives HF\'s image embeddings to 1e-4 (Pillow\'s JPEG pixels), and a bad --decoder is refused', async () => {
    const ref = (await readSafetensors(join(HF, 'io.safetensors'))).tensors.get('image_embeds_normalized');
    const out = join(dir, 'exact.safetensors');
    expect(await runCli(['embed', '--checkpoint', HF, '--images', ...IMAGES, '--decoder', 'sharp', '--out', out, '--backend', 'cpu'], captureIO())).toBe(0);
    const got = (await readSafetensors(out)).tensors.get('embeddings');
    expect(got?.shape).toEqual(ref?.shape);
    const diff = Math.max(...Array.from(got?.data ?? [], (v, i) => Math.abs(v - (ref?.data[i] as number))));
    expect(diff).toBeLessThan(1e-4);
    const io = captureIO();
    expect(await runCli(['embed', '--checkpoint', HF, '--images', ...IMAGES, '--decoder', 'pil', '--out', out], io)).not.toBe(0);
    expect(io.err()).toMatch(/--decoder.*must be one of turbo, sharp/);
  });

  it('clip zeroshot --checkpoint <Hub id> downloads through the Hub client ($HF_ENDPOINT, $HF_HUB_CACHE)', async () => {
    const saved = { endpoint: process.env.HF_ENDPOINT, cache: process.env.HF_HUB_CACHE };
    process.env.HF_ENDPOINT = endpoint;
    process.env.HF_HUB_CACHE = join(dir, 'hub');
    try {
      const io = captureIO();
      const code = await runCli(['zeroshot', '--checkpoint', 'test/clip-tiny', '--dataset', 'imagefolder', '--root', join(dir, 'folder'), '--json', '--backend', 'cpu'], io);
      expect(io.err()).not.toMatch(/error/);
      expect(code).toBe(0);
      expect((JSON.parse(io.out()) as { checkpoint: string }).checkpoint).toBe('test/clip-tiny');
      expect(await readdir(join(dir, 'hub', 'models--test--clip-tiny', 'snapshots', COMMIT))).toEqual(expect.arrayContaining(['model.safetensors', 'tokenizer.json', 'preprocessor_config.json']));
    } finally {
      for (const [k, v] of [['HF_ENDPOINT', saved.endpoint], ['HF_HUB_CACHE', saved.cache]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
