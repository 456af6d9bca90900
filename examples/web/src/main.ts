/**
 * The page: pick a model and backend, drop images, type labels (zero-shot) or a query (ranking), label a
 * few images and train the few-shot adapter. State is a list of images with their embeddings; labels and
 * queries only embed texts, so typing does not re-run the image tower.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { initBackend, BROWSER_BACKEND_NAMES, type BrowserBackendName } from '@clip-ts/core';
import { Embeddings, PageCLIP, type LabelScore } from './model.js';
import { accuracy, predict, trainFewShot, zeroShotHead } from './few-shot.js';

interface PageImage {
  name: string;
  file: File;
  url: string;
  row: number;
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
};
const status = $('status');
const progress = $<HTMLProgressElement>('progress');
const errors = $('errors');
const gallery = $('gallery');
const ranking = $('ranking');
const labelsInput = $<HTMLInputElement>('labels');
const templateInput = $<HTMLInputElement>('template');
const queryInput = $<HTMLInputElement>('query');
const fewshotResult = $<HTMLOutputElement>('fewshot-result');

let clip: PageCLIP | undefined;
const images: PageImage[] = [];
let embeddings: Embeddings | undefined;
let labels: string[] = [];
let busy: Promise<unknown> = Promise.resolve();

const params = new URLSearchParams(location.search);
const timings: Record<string, number> = {};

function setStatus(text: string, state: 'loading' | 'ready' | 'busy' | 'error'): void {
  status.textContent = text;
  status.dataset.state = state;
}

function showError(message: string): void {
  const p = document.createElement('p');
  p.textContent = message;
  errors.append(p);
}

/** Run UI actions one after another: a second drop waits for the first embedding to finish. */
function serial(task: () => Promise<void>): Promise<void> {
  const next = busy.then(task).catch((err: unknown) => {
    showError((err as Error).message);
    setStatus('Error (see above)', 'error');
  });
  busy = next;
  return next;
}

function parseLabels(text: string): string[] {
  return [...new Set(text.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
}

function render(scores?: LabelScore[][], rankOrder?: { row: number; score: number }[]): void {
  gallery.replaceChildren();
  const order = rankOrder ? rankOrder.map((r) => r.row) : images.map((img) => img.row);
  for (const row of order) {
    const img = images.find((i) => i.row === row) as PageImage;
    const card = document.createElement('figure');
    card.className = 'card';
    card.dataset.name = img.name;
    const pic = document.createElement('img');
    pic.src = img.url;
    pic.alt = img.name;
    const caption = document.createElement('figcaption');
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = img.name;
    const rank = rankOrder?.findIndex((r) => r.row === row);
    if (rank !== undefined && rank >= 0) {
      const r = document.createElement('span');
      r.className = 'rank';
      r.textContent = `#${rank + 1}`;
      name.prepend(r);
    }
    caption.append(name);
    const list = scores?.[row];
    if (list) {
      const ol = document.createElement('ol');
      ol.className = 'labels';
      for (const s of list.slice(0, 5)) {
        const li = document.createElement('li');
        li.dataset.label = s.label;
        li.dataset.prob = String(s.probability);
        li.textContent = `${s.label} ${(100 * s.probability).toFixed(1)}%`;
        const bar = document.createElement('span');
        bar.className = 'bar';
        bar.style.width = `${Math.round(60 * s.probability)}px`;
        li.append(bar);
        ol.append(li);
      }
      caption.append(ol);
    }
    if (labels.length > 0) {
      const sel = document.createElement('select');
      sel.className = 'fewshot-label';
      sel.title = 'label for the few-shot adapter';
      sel.append(new Option('(unlabelled)', ''), ...labels.map((l) => new Option(l, l)));
      sel.value = fewshotLabels.get(img.name) ?? '';
      sel.addEventListener('change', () => fewshotLabels.set(img.name, sel.value));
      caption.append(sel);
    }
    card.append(pic, caption);
    gallery.append(card);
  }
}

const fewshotLabels = new Map<string, string>();
let lastScores: LabelScore[][] | undefined;
let lastRanking: { row: number; score: number }[] | undefined;

async function classify(): Promise<void> {
  if (!clip) return;
  labels = parseLabels(labelsInput.value);
  if (labels.length === 0 || !embeddings || images.length === 0) {
    lastScores = undefined;
    render(undefined, lastRanking);
    return;
  }
  setStatus(`Classifying ${images.length} image(s) among ${labels.length} label(s)…`, 'busy');
  lastScores = await clip.zeroShot(embeddings, labels, { templates: [templateInput.value] });
  render(lastScores, lastRanking);
  setStatus(`Ready: ${images.length} image(s)`, 'ready');
}

async function search(): Promise<void> {
  if (!clip) return;
  const query = queryInput.value.trim();
  if (query === '' || !embeddings || images.length === 0) {
    lastRanking = undefined;
    ranking.replaceChildren();
    render(lastScores);
    return;
  }
  const sims = await clip.similarity(embeddings, [query]);
  lastRanking = sims.map((s, row) => ({ row, score: s[0] as number })).sort((a, b) => b.score - a.score);
  ranking.replaceChildren(
    ...lastRanking.map((r) => {
      const li = document.createElement('li');
      const img = images.find((i) => i.row === r.row) as PageImage;
      li.dataset.name = img.name;
      li.dataset.score = String(r.score);
      li.textContent = `${img.name} — ${r.score.toFixed(3)}`;
      return li;
    }),
  );
  render(lastScores, lastRanking);
  setStatus(`Ready: ${images.length} image(s)`, 'ready');
}

async function addFiles(files: readonly File[]): Promise<void> {
  if (!clip) throw new Error('no model loaded');
  const model = clip;
  const accepted: File[] = [];
  const fresh: Embeddings[] = [];
  const started = performance.now();
  progress.value = 0;
  for (const [i, file] of files.entries()) {
    setStatus(`Embedding ${file.name} (${i + 1}/${files.length})…`, 'busy');
    try {
      // One at a time, so one unreadable file is reported and skipped instead of failing the batch.
      fresh.push(await model.embedImages([file]));
      accepted.push(file);
    } catch (err) {
      showError(`Cannot read ${file.name}: ${(err as Error).message}`);
    }
    progress.value = (i + 1) / files.length;
  }
  timings.embedMs = performance.now() - started;
  timings.embedded = accepted.length;
  const dim = model.dim;
  const old = embeddings?.rows ?? 0;
  const data = new Float32Array((old + accepted.length) * dim);
  if (embeddings) data.set(embeddings.data);
  fresh.forEach((e, i) => data.set(e.data, (old + i) * dim));
  accepted.forEach((file, i) => images.push({ name: file.name, file, url: URL.createObjectURL(file), row: old + i }));
  embeddings = new Embeddings(data, old + accepted.length, dim);
  setStatus(`Ready: ${images.length} image(s)`, 'ready');
  await classify();
  await search();
}

async function trainAdapter(): Promise<void> {
  if (!clip || !embeddings) return;
  const stored = embeddings;
  const model = clip;
  const shots = Math.max(1, Number($<HTMLInputElement>('shots').value) || 1);
  const labelled = images.filter((i) => labels.includes(fewshotLabels.get(i.name) ?? ''));
  const seen = new Map<string, number>();
  const train: PageImage[] = [];
  const test: PageImage[] = [];
  for (const img of labelled) {
    const l = fewshotLabels.get(img.name) as string;
    const n = seen.get(l) ?? 0;
    (n < shots ? train : test).push(img);
    seen.set(l, n + 1);
  }
  if (train.length === 0 || test.length === 0) {
    throw new Error(`few-shot: label at least ${shots + 1} images of some label (${shots} to train on, the rest to test); labelled now: ${labelled.length}`);
  }
  setStatus(`Training the adapter on ${train.length} image(s)…`, 'busy');
  const started = performance.now();
  const classText = await model.embedTexts(labels, { templates: [templateInput.value] });
  const classOf = (img: PageImage): number => labels.indexOf(fewshotLabels.get(img.name) as string);
  const testRows = test.map((i) => i.row);
  const truth = test.map(classOf);
  const before = accuracy(predict(zeroShotHead(classText, model.scale), stored, testRows), truth);
  const head = await trainFewShot(stored, train.map((i) => i.row), train.map(classOf), classText, model.scale);
  const after = accuracy(predict(head, stored, testRows), truth);
  const ms = performance.now() - started;
  fewshotResult.dataset.before = String(before);
  fewshotResult.dataset.after = String(after);
  fewshotResult.dataset.train = String(train.length);
  fewshotResult.dataset.test = String(test.length);
  fewshotResult.textContent =
    `Accuracy on ${test.length} held-out labelled image(s): zero-shot ${(100 * before).toFixed(1)}% → adapter ${(100 * after).toFixed(1)}% ` +
    `(trained on ${train.length} in ${(ms / 1000).toFixed(2)} s; loss ${head.lossBefore.toFixed(3)} → ${head.lossAfter.toFixed(3)})`;
  setStatus(`Ready: ${images.length} image(s)`, 'ready');
}

async function start(): Promise<void> {
  const modelSelect = $<HTMLSelectElement>('model');
  const backendSelect = $<HTMLSelectElement>('backend');
  const custom = params.get('model');
  if (custom) {
    if (![...modelSelect.options].some((o) => o.value === custom)) modelSelect.append(new Option(`${custom} (from ?model=)`, custom));
    modelSelect.value = custom;
  }
  const backendParam = params.get('backend') ?? 'auto';
  if (!(BROWSER_BACKEND_NAMES as readonly string[]).includes(backendParam)) {
    throw new Error(`?backend=${backendParam}: expected one of ${BROWSER_BACKEND_NAMES.join(', ')}`);
  }
  backendSelect.value = backendParam;
  // A new model or backend is a fresh page: tfjs backends cannot be swapped under live tensors.
  const reload = (): void => {
    const next = new URLSearchParams(location.search);
    next.set('model', modelSelect.value);
    next.set('backend', backendSelect.value);
    location.search = next.toString();
  };
  modelSelect.addEventListener('change', reload);
  backendSelect.addEventListener('change', reload);

  // The .wasm binaries are copied next to the page at build time (scripts/prepare-static.mjs).
  setWasmPaths(new URL('tfjs-wasm/', document.baseURI).href);
  // tfjs's threaded wasm binary starts its workers from an inlined script that breaks once bundled
  // ("e is not defined" in the worker, and the backend never becomes ready); single-threaded SIMD is
  // what Node runs too. ?threads=1 tries the threaded build anyway.
  if (params.get('threads') !== '1') tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setStatus(`Starting backend ${backendParam}…`, 'loading');
  const info = await initBackend(backendParam as BrowserBackendName);
  document.body.dataset.backend = info.name;
  const loadStarted = performance.now();
  setStatus(`Loading ${modelSelect.value} on ${info.name}…`, 'loading');
  try {
    clip = await PageCLIP.fromUrl(modelSelect.value, {
      onProgress: (p) => {
        if (p.file === 'model.safetensors' && p.total) progress.value = p.loaded / p.total;
        setStatus(`Downloading ${p.file}: ${(p.loaded / 1e6).toFixed(1)}${p.total ? ` / ${(p.total / 1e6).toFixed(1)}` : ''} MB`, 'loading');
      },
    });
  } catch (err) {
    throw new Error(`The model at ${modelSelect.value} failed to load: ${(err as Error).message}`, { cause: err });
  }
  timings.loadMs = performance.now() - loadStarted;
  progress.value = 1;
  setStatus(`Ready: ${clip.kind} model, backend ${info.name} — add images`, 'ready');

  const files = $<HTMLInputElement>('files');
  files.addEventListener('change', () => {
    const picked = [...(files.files ?? [])];
    files.value = '';
    void serial(() => addFiles(picked));
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const dropped = [...(e.dataTransfer?.files ?? [])];
    void serial(() => addFiles(dropped));
  });
  $('labels-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void serial(classify);
  });
  $('query-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void serial(search);
  });
  $('train').addEventListener('click', () => void serial(trainAdapter));
}

type InputKind = 'blob' | 'bitmap' | 'img' | 'imagedata';

/** The same picture as each kind of input decodeBrowserImage takes (the test checks they agree). */
async function asInput(img: PageImage, as: InputKind): Promise<Blob | ImageBitmap | HTMLImageElement | ImageData> {
  if (as === 'blob') return img.file;
  const bitmap = await createImageBitmap(img.file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  if (as === 'bitmap') return bitmap;
  if (as === 'imagedata') {
    const c = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = c.getContext('2d') as OffscreenCanvasRenderingContext2D;
    ctx.drawImage(bitmap, 0, 0);
    return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  }
  const el = new Image();
  el.src = img.url;
  await el.decode();
  return el;
}

/** For tests and the console: what the page computed, at full precision. */
declare global {
  interface Window {
    clipPage: {
      ready: Promise<void>;
      idle: () => Promise<unknown>;
      timings: Record<string, number>;
      /** Preprocessed pixel_values (CHW) of an added image, decoded by the browser from the given kind of input. */
      pixelValues: (name: string, as?: InputKind) => Promise<number[]>;
    };
  }
}

const ready = start().catch((err: unknown) => {
  showError((err as Error).message);
  setStatus('Error (see above)', 'error');
});
window.clipPage = {
  ready,
  idle: () => busy,
  timings,
  pixelValues: async (name, as = 'blob') => {
    const img = images.find((i) => i.name === name);
    if (!img || !clip) throw new Error(`no image ${name}`);
    return Array.from(await clip.pixelValues(await asInput(img, as)));
  },
};
