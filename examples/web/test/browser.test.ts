/**
 * The page in a real Chromium: upload images, type labels and a query, and check that what the page shows
 * equals what the Node API computes for the same checkpoint and files (≤ 1e-4), on the wasm and cpu
 * backends. Also: browser pixel decoding vs Node's sharp path, the error messages, the few-shot adapter,
 * and a screenshot per run under test-output/ (gitignored).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@clip-ts/core';
import { createShapes } from '@clip-ts/data';
import { accuracy, predict, trainFewShot, zeroShotHead } from '../src/few-shot.js';
import { launchChromium, serveStatic, type Browser, type StaticServer } from './harness.js';
import { loadNodeModel, nodeReference, type Reference } from './node-reference.js';

const web = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = join(web, 'dist');
const output = join(web, 'test-output');
const fixture = resolve(web, '../../packages/clip-encoders/test/fixtures/hf/clip-tiny');
const TOL = 1e-4;
const TEMPLATE = 'a photo of a {}.';

let server: StaticServer;
let browser: Browser;
let work: string;
const log: string[] = [];

interface Shown {
  labels: Map<string, { label: string; probability: number }[]>;
  ranking: { name: string; score: number }[];
}

async function openPage(model: string, backend: string): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('pageerror', (err) => log.push(`pageerror: ${err.message}`));
  await page.goto(`${server.url}?model=${encodeURIComponent(model)}&backend=${backend}`);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('status')?.dataset.state ?? ''), null, { timeout: 60_000 });
  return page;
}

async function idle(page: Page): Promise<void> {
  await page.evaluate(() => window.clipPage.idle());
}

/** Upload, classify, search; read what the page shows (full precision from data-* attributes). */
async function drive(page: Page, files: string[], labels: string[], query: string): Promise<Shown> {
  await page.setInputFiles('#files', files);
  await idle(page);
  await page.fill('#labels', labels.join(', '));
  await page.fill('#template', TEMPLATE);
  await page.press('#labels', 'Enter');
  await idle(page);
  await page.fill('#query', query);
  await page.press('#query', 'Enter');
  await idle(page);
  return page.evaluate(() => {
    const shownLabels = [...document.querySelectorAll<HTMLElement>('.card')].map((card) => [
      card.dataset.name as string,
      [...card.querySelectorAll<HTMLElement>('li[data-label]')].map((li) => ({ label: li.dataset.label as string, probability: Number(li.dataset.prob) })),
    ]);
    const ranking = [...document.querySelectorAll<HTMLElement>('#ranking li')].map((li) => ({ name: li.dataset.name as string, score: Number(li.dataset.score) }));
    return { labels: shownLabels, ranking };
  }).then((r) => ({ labels: new Map(r.labels as [string, { label: string; probability: number }[]][]), ranking: r.ranking }));
}

/**
 * Every label the page shows has Node's probability (≤ 1e-4), the page shows Node's top 5 in descending
 * order, and the ranking lists Node's images with the same scores; near-ties (within the tolerance) may
 * come in either order.
 */
function expectMatches(shown: Shown, ref: Reference, what: string): void {
  expect([...shown.labels.keys()].sort(), what).toEqual([...ref.labels.keys()].sort());
  for (const [name, expected] of ref.labels) {
    const got = shown.labels.get(name) ?? [];
    const k = Math.min(5, expected.length);
    expect(got.length, `${what} ${name}: labels shown`).toBe(k);
    got.forEach((g, i) => {
      const e = expected.find((x) => x.label === g.label);
      expect(e, `${what} ${name}: label ${g.label}`).toBeDefined();
      expect(Math.abs(g.probability - (e?.probability ?? NaN)), `${what} ${name} ${g.label}: ${g.probability} vs ${e?.probability}`).toBeLessThanOrEqual(TOL);
      // Rank i on the page holds Node's rank-i probability (so the order agrees up to near-ties).
      expect(Math.abs(g.probability - (expected[i]?.probability ?? NaN)), `${what} ${name} rank ${i}`).toBeLessThanOrEqual(TOL);
    });
  }
  expect(shown.ranking.map((r) => r.name).sort(), `${what} ranking`).toEqual(ref.ranking.map((r) => r.name).sort());
  shown.ranking.forEach((r, i) => {
    // Scores are cos × exp(logit_scale): compare the cosines at 1e-4, by name and by rank.
    const byName = ref.ranking.find((x) => x.name === r.name)?.score ?? NaN;
    const byRank = ref.ranking[i]?.score ?? NaN;
    expect(Math.abs(r.score - byName) / ref.scale, `${what} score of ${r.name}: ${r.score} vs ${byName}`).toBeLessThanOrEqual(TOL);
    expect(Math.abs(r.score - byRank) / ref.scale, `${what} rank ${i}`).toBeLessThanOrEqual(TOL);
  });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(output, `${name}.png`), fullPage: true });
}


/** Browser decoding + preprocessing vs Node (sharp): exact for PNG; JPEG reported (decoders may differ). */
async function checkPixels(page: Page, files: string[]): Promise<void> {
  const node = await loadNodeModel(fixture);
  try {
    for (const file of files) {
      const got = await page.evaluate((n) => window.clipPage.pixelValues(n), basename(file));
      const want = await node.processor.processFile(file);
      expect(got.length).toBe(want.length);
      let max = 0;
      for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs((got[i] as number) - (want[i] as number)));
      log.push(`pixel_values ${basename(file)}: max |browser − node| = ${max.toExponential(2)}`);
      if (file.endsWith('.png')) {
        expect(max, basename(file)).toBeLessThanOrEqual(TOL);
        // The other input kinds (ImageBitmap, <img>, ImageData) decode to the same pixels as the File.
        for (const kind of ['bitmap', 'img', 'imagedata'] as const) {
          const other = await page.evaluate(([n, k]) => window.clipPage.pixelValues(n, k), [basename(file), kind] as const);
          let d = 0;
          for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs((other[i] as number) - (want[i] as number)));
          expect(d, `${basename(file)} as ${kind}`).toBeLessThanOrEqual(TOL);
        }
      } else {
        // JPEG: libjpeg-turbo builds may round differently; a level or two is < 0.1 after normalisation.
        expect(max, basename(file)).toBeLessThan(0.1);
      }
    }
  } finally {
    node.dispose();
  }
}

let tinyFiles: string[];
let shapeFiles: string[];
let shapeTruth: Map<string, string>;
let shapeLabels: string[];

beforeAll(async () => {
  if (!existsSync(join(dist, 'index.html')) || process.env.CLIP_WEB_REBUILD === '1') {
    execFileSync('npm', ['run', 'build'], { cwd: web, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  await mkdir(output, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'clip-web-test-'));
  // Fixture PNGs under distinct names, plus shapes rendered as PNG (lossless, so decoding is exact).
  tinyFiles = [];
  for (const f of ['image_0.png', 'image_1.png']) {
    const to = join(work, `tiny-${f}`);
    await writeFile(to, await sharp(join(fixture, f)).png().toBuffer());
    tinyFiles.push(to);
  }
  const shapes = createShapes({ seed: 11, imageSize: 32, trainSize: 1, valSize: 1, testSize: 120, heldOutSize: 1 });
  const wanted = ['red circle', 'blue square', 'green triangle', 'yellow star'];
  shapeTruth = new Map();
  shapeFiles = [];
  const perClass = new Map<string, number>();
  for (let i = 0; i < shapes.test.length && shapeFiles.length < 16; i++) {
    const name = shapes.test.classNames[shapes.test.label(i)] as string;
    if (!wanted.includes(name) || (perClass.get(name) ?? 0) >= 4) continue;
    perClass.set(name, (perClass.get(name) ?? 0) + 1);
    const file = join(work, `shape-${String(i).padStart(3, '0')}.png`);
    await writeFile(file, await sharp(Buffer.from(shapes.test.raw(i)), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer());
    shapeFiles.push(file);
    shapeTruth.set(basename(file), name);
  }
  shapeLabels = wanted.filter((w) => perClass.has(w));
  server = await serveStatic(dist);
  browser = await launchChromium();
  await initBackend('cpu');
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (work) await rm(work, { recursive: true, force: true });
  if (log.length > 0) console.log(log.join('\n'));
});

describe('examples/web in Chromium', () => {
  const tinyLabels = ['cat', 'dog', 'a red square', 'remote control'];
  const tinyQuery = 'a photo of two cats';

  for (const backend of ['wasm', 'cpu'] as const) {
    it(`tiny CLIP on ${backend}: labels, probabilities and ranking equal Node's (≤ 1e-4)${backend === 'cpu' ? '; pixels, unreadable image' : ''}`, async () => {
      const node = await loadNodeModel(fixture);
      let ref: Reference;
      try {
        ref = await nodeReference(node, tinyFiles, tinyLabels, TEMPLATE, tinyQuery);
      } finally {
        node.dispose();
      }
      const page = await openPage('models/clip-tiny/', backend);
      try {
        expect(await page.getAttribute('#status', 'data-state'), await page.textContent('#errors') ?? '').toBe('ready');
        expect(await page.getAttribute('body', 'data-backend')).toBe(backend);
        const shown = await drive(page, tinyFiles, tinyLabels, tinyQuery);
        expectMatches(shown, ref, `tiny/${backend}`);
        const timings = await page.evaluate(() => window.clipPage.timings);
        log.push(`tiny CLIP on ${backend}: load ${timings.loadMs?.toFixed(0)} ms, ${timings.embedded} images in ${timings.embedMs?.toFixed(0)} ms`);
        if (backend === 'cpu') {
          const jpeg = join(work, 'tiny-image_2.jpg');
          await copyFile(join(fixture, 'image_2.jpg'), jpeg);
          const broken = join(work, 'broken.png');
          await writeFile(broken, 'this is not a PNG');
          await page.setInputFiles('#files', [broken, jpeg]);
          await idle(page);
          expect(await page.textContent('#errors')).toContain('Cannot read broken.png');
          expect(await page.locator('.card').count()).toBe(tinyFiles.length + 1);
          await checkPixels(page, [...tinyFiles, jpeg]);
        }
        await screenshot(page, `tiny-clip-${backend}`);
      } finally {
        await page.close();
      }
    });
  }

  it('says which model failed to load', async () => {
    const missing = await openPage('models/nothing-here/', 'cpu');
    try {
      expect(await missing.getAttribute('#status', 'data-state')).toBe('error');
      const text = (await missing.textContent('#errors')) ?? '';
      expect(text).toContain('models/nothing-here/ failed to load');
      expect(text).toContain('no config.json');
    } finally {
      await missing.close();
    }
  });

  it('demo checkpoint on wasm: page = Node; few-shot adapter before/after = Node', async () => {
    const demoDir = join(dist, 'models/demo');
    const node = await loadNodeModel(demoDir);
    const query = 'a red circle';
    let ref: Reference;
    let scale: number;
    let classText: Float32Array;
    try {
      ref = await nodeReference(node, shapeFiles, shapeLabels, TEMPLATE, query);
      scale = Math.min(Math.exp((await node.model.logitScale.data())[0] as number), 100);
      const cls = node.tokenize(shapeLabels.map((l) => TEMPLATE.replace('{}', l)));
      const t = node.model.encodeTexts(cls);
      classText = (await t.data()) as Float32Array;
      t.dispose();
      cls.inputIds.dispose();
      cls.attentionMask.dispose();
    } finally {
      node.dispose();
    }
    const page = await openPage('models/demo/', 'wasm');
    try {
      expect(await page.getAttribute('#status', 'data-state'), (await page.textContent('#errors')) ?? '').toBe('ready');
      const shown = await drive(page, shapeFiles, shapeLabels, query);
      expectMatches(shown, ref, 'demo/wasm');

      // Label every image; the first 1 per label trains, the rest are held out (the page's rule).
      for (const file of shapeFiles) {
        const name = basename(file);
        await page.selectOption(`.card[data-name="${name}"] select.fewshot-label`, shapeTruth.get(name) as string);
      }
      await page.fill('#shots', '1');
      await page.click('#train');
      await idle(page);
      const result = await page.evaluate(() => {
        const out = document.getElementById('fewshot-result') as HTMLElement;
        return { test: out.dataset.test, before: out.dataset.before, after: out.dataset.after, text: out.textContent };
      });
      log.push(`few-shot on the demo checkpoint (${basename(String(process.env.CLIP_WEB_DEMO ?? 'see dist/models/demo/SOURCE.txt'))}): ${result.text}`);

      // The same split and training in Node on Node's embeddings.
      const names = shapeFiles.map((f) => basename(f));
      const seen = new Map<string, number>();
      const trainRows: number[] = [];
      const testRows: number[] = [];
      names.forEach((n, row) => {
        const l = shapeTruth.get(n) as string;
        ((seen.get(l) ?? 0) < 1 ? trainRows : testRows).push(row);
        seen.set(l, (seen.get(l) ?? 0) + 1);
      });
      const classOf = (row: number): number => shapeLabels.indexOf(shapeTruth.get(names[row] as string) as string);
      const images = { data: ref.imageEmbeddings, rows: names.length, dim: ref.imageEmbeddings.length / names.length };
      const text = { data: classText, rows: shapeLabels.length, dim: images.dim };
      const truth = testRows.map(classOf);
      const before = accuracy(predict(zeroShotHead(text, scale), images, testRows), truth);
      const head = await trainFewShot(images, trainRows, trainRows.map(classOf), text, scale);
      const after = accuracy(predict(head, images, testRows), truth);
      expect(Number(result.test)).toBe(testRows.length);
      expect(Number(result.before)).toBeCloseTo(before, 6);
      expect(Number(result.after)).toBeCloseTo(after, 6);
      await screenshot(page, 'demo-wasm-fewshot');
    } finally {
      await page.close();
    }
  });

  // SwiftShader compiles every shader on the CPU (~35 s here): slow, but it is the only WebGL CI has.
  it('webgl (SwiftShader): equal to Node when it runs, else a clear error', async () => {
    const page = await openPage('models/clip-tiny/', 'webgl');
    try {
      const state = await page.getAttribute('#status', 'data-state');
      const errors = (await page.textContent('#errors')) ?? '';
      log.push(`webgl: page state ${state}${errors ? `: ${errors}` : ''}`);
      if (state === 'ready') {
        const node = await loadNodeModel(fixture);
        let ref: Reference;
        try {
          ref = await nodeReference(node, tinyFiles, tinyLabels, TEMPLATE, 'a photo of two cats');
        } finally {
          node.dispose();
        }
        const shown = await drive(page, tinyFiles, tinyLabels, 'a photo of two cats');
        let max = 0;
        for (const [name, want] of ref.labels) {
          for (const g of shown.labels.get(name) ?? []) max = Math.max(max, Math.abs(g.probability - (want.find((w) => w.label === g.label)?.probability ?? NaN)));
        }
        log.push(`webgl: max |probability − node| = ${max.toExponential(2)}`);
        // SwiftShader runs it here; when it does, it must agree like the other backends.
        expectMatches(shown, ref, 'tiny/webgl');
        await screenshot(page, 'tiny-clip-webgl');
      }
      // Without a usable WebGL the page must say so, not hang.
      if (state !== 'ready') expect(errors).toContain('webgl');
    } finally {
      await page.close();
    }
  });

  // Sizes and speeds for docs/browser.md: CLIP_WEB_BENCH=1 npx vitest run --project web test/browser.test.ts
  it.runIf(process.env.CLIP_WEB_BENCH === '1')('speed per backend (logged, not asserted)', async () => {
    const shapes = createShapes({ seed: 5, imageSize: 64, trainSize: 1, valSize: 1, testSize: 32, heldOutSize: 1 });
    const files: string[] = [];
    for (let i = 0; i < shapes.test.length; i++) {
      const file = join(work, `bench-${i}.png`);
      await writeFile(file, await sharp(Buffer.from(shapes.test.raw(i)), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer());
      files.push(file);
    }
    for (const model of ['models/clip-tiny/', 'models/demo/']) {
      for (const backend of ['wasm', 'cpu', 'webgl']) {
        const page = await openPage(model, backend);
        try {
          if ((await page.getAttribute('#status', 'data-state')) !== 'ready') {
            log.push(`speed ${model} ${backend}: ${await page.textContent('#errors')}`);
            continue;
          }
          await page.setInputFiles('#files', files.slice(0, 4)); // warm-up (kernels, shaders)
          await idle(page);
          await page.setInputFiles('#files', files);
          await idle(page);
          const t = await page.evaluate(() => window.clipPage.timings);
          const ips = ((t.embedded ?? 0) / (t.embedMs ?? NaN)) * 1000;
          log.push(`speed ${model} ${backend}: load ${t.loadMs?.toFixed(0)} ms, ${t.embedded} images in ${t.embedMs?.toFixed(0)} ms = ${ips.toFixed(1)} images/s`);
        } finally {
          await page.close();
        }
      }
    }
  }, 600_000);

  // The few-shot report for docs/browser.md: held-out colour–shape combinations next to seen ones that share
  // a colour or a shape, where zero-shot is weakest. CLIP_WEB_BENCH=1 as above; build with the trained demo.
  it.runIf(process.env.CLIP_WEB_BENCH === '1')('few-shot on unseen combinations (logged, not asserted)', async () => {
    const names = ['red square', 'green star', 'blue circle', 'yellow triangle', 'red circle', 'green triangle', 'blue square', 'yellow star'];
    const shapes = createShapes({ seed: 42, imageSize: 32, trainSize: 1, valSize: 1, testSize: 1, heldOutSize: 1 });
    const set = shapes.zeroShot({ includeSeen: true, size: 600, seed: 99 });
    const files: string[] = [];
    const truth = new Map<string, string>();
    const count = new Map<string, number>();
    for (let i = 0; i < set.length && files.length < names.length * 6; i++) {
      const name = set.classNames[set.label(i)] as string;
      if (!names.includes(name) || (count.get(name) ?? 0) >= 6) continue;
      count.set(name, (count.get(name) ?? 0) + 1);
      const file = join(work, `combo-${String(i).padStart(3, '0')}.png`);
      await writeFile(file, await sharp(Buffer.from(set.raw(i)), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer());
      files.push(file);
      truth.set(basename(file), name);
    }
    const page = await openPage('models/demo/', 'wasm');
    try {
      await drive(page, files, names, 'a red square');
      for (const file of files) await page.selectOption(`.card[data-name="${basename(file)}"] select.fewshot-label`, truth.get(basename(file)) as string);
      for (const shots of [1, 2, 3]) {
        await page.fill('#shots', String(shots));
        await page.click('#train');
        await idle(page);
        log.push(`few-shot, ${names.length} labels × 6 images, ${shots} shot(s): ${await page.textContent('#fewshot-result')}`);
      }
      await screenshot(page, 'demo-fewshot-unseen');
    } finally {
      await page.close();
    }
  }, 300_000);
});
