// One bench measurement per process (so backends, heaps and peak RSS do not mix), run by bench/run.mjs:
//   node bench/tasks.mjs <train|train-parallel|infer|infer-parallel|memory|pipeline|pipeline-stages|frozen|profile|matmul|matmuls|big-train|big-cache>
//        [--backend wasm] [--reps N] [--warmup N] [--batch N] [--dir DIR] [--steps N] [--threads N] [--workers N]
//        [--micro N] [--checkpointing on|off] [--adam-state host|device] [--images N] [--resizer sharp|pillow] [--decoder turbo|sharp] [--image-workers N] [--concurrency N] [--patch-dropout P]
// --threads: wasm backend threads (default: initBackend's, i.e. $CLIP_WASM_THREADS or every core).
// Prints one JSON object as its last stdout line. Uses the BUILT packages (dist), as a user would.
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeBenchImages } from './images.mjs';

const { positionals, values: opt } = parseArgs({
  allowPositionals: true,
  options: {
    backend: { type: 'string', default: 'wasm' },
    reps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '50' },
    workers: { type: 'string', default: '1' },
    dir: { type: 'string' },
    budget: { type: 'string', default: '240' },
    resizer: { type: 'string', default: 'pillow' },
    decoder: { type: 'string' },
    'image-workers': { type: 'string' },
    concurrency: { type: 'string' },
    threads: { type: 'string' },
    micro: { type: 'string' },
    /** big-train: gradient checkpointing on|off (default: as microBatch 'auto' decides). */
    checkpointing: { type: 'string' },
    /** big-train / train: Adam's moments on the backend (default) or 'host' (JS memory). */
    'adam-state': { type: 'string' },
    images: { type: 'string', default: '64' },
    /** FLIP patch dropout of the vision tower in the train/memory steps (issue 14 §5). */
    'patch-dropout': { type: 'string', default: '0' },
  },
});
const task = positionals[0];
const reps = Number(opt.reps);
const warmup = Number(opt.warmup);
const batchSize = Number(opt.batch);
/** Stop adding timed repetitions past this many seconds (a slow backend still reports a median of ≥ 1). */
const budgetMs = Number(opt.budget) * 1000;

export const SMALL = {
  model_type: 'clip-ts',
  projection_dim: 256,
  projection_head: 'linear',
  head_dropout: 0,
  vision_config: {
    model_type: 'vit', image_size: 224, patch_size: 16, hidden_size: 192, num_hidden_layers: 4,
    num_attention_heads: 3, intermediate_size: 768, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
  },
  text_config: {
    model_type: 'distilbert', dim: 192, n_layers: 4, n_heads: 3, hidden_dim: 768, vocab_size: 30522,
    dropout: 0, attention_dropout: 0,
  },
};
/**
 * The reference's towers at random weights: google/vit-base-patch16-224-in21k's and distilbert-base-uncased's
 * HF configs (their architecture keys; dropouts as published), Linear 768→256 + LayerNorm heads.
 */
export const BIG = {
  model_type: 'clip-ts',
  projection_dim: 256,
  projection_head: 'linear',
  head_dropout: 0,
  vision_config: {
    model_type: 'vit', image_size: 224, patch_size: 16, num_channels: 3, hidden_size: 768, num_hidden_layers: 12,
    num_attention_heads: 12, intermediate_size: 3072, hidden_act: 'gelu', layer_norm_eps: 1e-12,
    hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
  },
  text_config: {
    model_type: 'distilbert', vocab_size: 30522, max_position_embeddings: 512, dim: 768, n_layers: 6, n_heads: 12,
    hidden_dim: 3072, activation: 'gelu', dropout: 0.1, attention_dropout: 0.1,
  },
};
const SEQ = 40;
const PAD = 10;
/** The real bert-base-uncased (= distilbert-base-uncased) tokenizer the CLI ships. */
const TOKENIZER = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'clip-cli', 'assets', 'bert-base-uncased', 'tokenizer.json');

/** A Flickr8k directory as distributed (Images/, captions.txt, official split files) of textured JPEGs. */
async function writeFlickr8k(root, counts) {
  const total = counts.train + counts.dev + counts.test;
  const paths = await writeBenchImages(join(root, 'Images'), total);
  const names = paths.map((p) => p.slice(p.lastIndexOf('/') + 1));
  const words = ['dog', 'child', 'man', 'woman', 'bike', 'ball', 'beach', 'street', 'field', 'water', 'red', 'blue'];
  const lines = ['image,caption'];
  const templates = [
    (w) => `A ${w(0)} and a ${w(1)} near the ${w(2)} .`,
    (w) => `a ${w(1)} playing in the ${w(2)} with a ${w(3)} ${w(0)}`,
    (w) => `Two ${w(0)}s stand by the ${w(4)} .`,
    (w) => `The ${w(3)} ${w(1)} is running across the ${w(2)}.`,
    (w) => `"A ${w(4)} ${w(0)}, seen from far away."`,
  ];
  names.forEach((name, i) => {
    const w = (k) => words[(i * 7 + k * 5) % words.length];
    for (const t of templates) lines.push(`${name},${t(w)}`);
  });
  await writeFile(join(root, 'captions.txt'), `${lines.join('\n')}\n`);
  const split = { train: names.slice(0, counts.train), dev: names.slice(counts.train, counts.train + counts.dev), test: names.slice(counts.train + counts.dev) };
  for (const [name, file] of [['train', 'Flickr_8k.trainImages.txt'], ['dev', 'Flickr_8k.devImages.txt'], ['test', 'Flickr_8k.testImages.txt']]) {
    await writeFile(join(root, file), `${split[name].join('\n')}\n`);
  }
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Run `fn` (async, returns nothing) warmup times, then up to `reps` timed times within the budget. */
async function timed(fn) {
  for (let i = 0; i < warmup; i++) await fn();
  const wall = [];
  const cpu = [];
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    await fn();
    wall.push(performance.now() - t0);
    cpu.push(cpuMs() - c0);
    if (performance.now() - start > budgetMs) break;
  }
  return { ms: median(wall), cpuMs: median(cpu), timesMs: wall.map((t) => Math.round(t)), reps: wall.length };
}

async function setup() {
  const core = await import('@clip-ts/core');
  await import('@clip-ts/encoders'); // registers the vit / distilbert towers
  const info = await core.initBackend(opt.backend, opt.threads === undefined ? {} : { threads: core.parseThreadCount(opt.threads, '--threads') });
  return { core, info };
}

function makeBatch(n) {
  return tf.tidy(() => {
    const ids = new Int32Array(n * SEQ);
    const mask = new Int32Array(n * SEQ);
    for (let b = 0; b < n; b++) {
      for (let s = 0; s < SEQ - PAD; s++) {
        ids[b * SEQ + s] = s === 0 ? 101 : 1000 + ((b * 7919 + s * 104729) % 29000);
        mask[b * SEQ + s] = 1;
      }
    }
    return {
      pixelValues: tf.randomNormal([n, 3, 224, 224], 0, 1, 'float32', 1),
      inputIds: tf.tensor2d(ids, [n, SEQ], 'int32'),
      attentionMask: tf.tensor2d(mask, [n, SEQ], 'int32'),
    };
  });
}

/** The project's Adam (PyTorch semantics) when @clip-ts/train exports it, else tfjs's own. */
async function makeOptimizer(model, host = opt['adam-state'] === 'host') {
  try {
    const train = await import('@clip-ts/train');
    if (typeof train.AdamOptimizer === 'function') {
      const params = model.namedVariables().map((v) => ({ name: v.name, variable: v.variable, decay: false }));
      // host (--adam-state host, or big-train's plan): the moments in JS memory (optim.stateOnHost), off the wasm heap.
      const Adam = host ? train.HostAdamOptimizer : train.AdamOptimizer;
      const adam = new Adam([{ name: 'all', params, lr: 1e-4, weightDecay: 0 }], { kind: 'adam' });
      const byName = new Map(params.map((p) => [p.variable.name, p.variable]));
      return {
        name: `@clip-ts/train ${Adam.name}`,
        apply: (grads) => adam.applyGradients(new Map(Object.entries(grads).map(([k, g]) => [byName.get(k), g]))),
      };
    }
  } catch {
    // fall through
  }
  const adam = tf.train.adam(1e-4);
  return { name: 'tf.train.adam', apply: (grads) => adam.applyGradients(grads) };
}

async function trainingStep() {
  const { core, info } = await setup();
  const patchDropout = Number(opt['patch-dropout']);
  const config = patchDropout > 0 ? { ...SMALL, vision_config: { ...SMALL.vision_config, patch_dropout: patchDropout } } : SMALL;
  const model = core.CLIPModel.fromConfig(config, { seed: 0 });
  const optimizer = await makeOptimizer(model);
  const vars = model.trainableVariables();
  return {
    core,
    info,
    model,
    optimizer,
    step: async (batch) => {
      const loss = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => model.loss(batch, { training: true }), vars);
        optimizer.apply(grads);
        return value;
      });
      const v = (await loss.data())[0];
      loss.dispose();
      if (!Number.isFinite(v)) throw new Error(`loss is ${v}`);
      return v;
    },
  };
}

/** The wasm heap's size (it only grows, so this is its peak so far), or undefined on other backends. */
function wasmHeapBytes() {
  const b = tf.backend();
  return b?.wasm?.HEAPU8?.length;
}

const mib = (bytes) => (bytes === undefined ? undefined : Math.round(bytes / 2 ** 20));

/**
 * The peak of the bytes live tensors hold (tf.memory().numBytes, sampled at every wasm allocation), reset by
 * each call of the returned function. Against the heap's size it separates what the step holds from the
 * allocator's fragmentation.
 */
function trackPeakLiveBytes() {
  const wasm = tf.backend()?.wasm;
  if (!wasm) return () => undefined;
  const malloc = wasm._malloc;
  let peak = 0;
  wasm._malloc = (bytes) => {
    const ptr = malloc(bytes);
    peak = Math.max(peak, tf.memory().numBytes + bytes);
    return ptr;
  };
  return () => {
    const p = peak;
    peak = tf.memory().numBytes;
    return p;
  };
}

const tasks = {
  /**
   * Training steps of ViT-base/16 + DistilBERT-base at --batch (32), micro-batch and checkpointing as the library's
   * `microBatch: auto` plans them (autoMicroBatch; --micro N / --checkpointing on|off override). --reps steps
   * (default 3 here); stepS is the median of the steps after the first (which also allocates Adam's moments).
   */
  async 'big-train'() {
    const { core, info } = await setup();
    const train = await import('@clip-ts/train');
    const model = core.CLIPModel.fromConfig(BIG, { seed: 0 });
    const vars = model.trainableVariables();
    // --adam-state host|device sets where Adam's moments live; unset, the plan decides (optim.stateOnHost auto).
    const stateOnHost = { host: true, device: false }[opt['adam-state']];
    const auto = train.autoMicroBatch(model, { vision: false, text: false }, {
      batchSize, maxLength: SEQ, backend: info.tfBackend, optim: { name: 'adam', stateOnHost },
      gradientCheckpointing: opt.checkpointing ? opt.checkpointing === 'on' : undefined,
    });
    const checkpointing = auto.gradientCheckpointing ?? false;
    train.setGradientCheckpointing(model, ['vision', 'text'], checkpointing);
    const micro = opt.micro ? Number(opt.micro) : auto.microBatch;
    const optimizer = await makeOptimizer(model, auto.stateOnHost === true);
    const spec = train.clipChunkedSpec(model, { vision: false, text: false }, 'diagonal');
    const batch = { ...makeBatch(batchSize), indices: [...Array(batchSize).keys()], captions: [...Array(batchSize).keys()].map(String) };
    const heapStart = wasmHeapBytes();
    const heapAfterStepMiB = [];
    const peakLive = trackPeakLiveBytes();
    peakLive();
    const peakLiveMiB = [];
    const losses = [];
    const steps = process.argv.includes('--reps') ? reps : 3;
    const wall = [];
    const cpu = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      const c0 = cpuMs();
      const { value, grads } = micro < batchSize
        ? train.chunkedLossAndGrads(spec, batch, vars, micro)
        : tf.variableGrads(() => model.loss(batch, { training: true }), vars);
      optimizer.apply(grads);
      tf.dispose(Object.values(grads));
      const loss = (await value.data())[0];
      value.dispose();
      if (!Number.isFinite(loss)) throw new Error(`loss is ${loss}`);
      wall.push(performance.now() - t0);
      cpu.push(cpuMs() - c0);
      losses.push(loss);
      heapAfterStepMiB.push(mib(wasmHeapBytes()));
      peakLiveMiB.push(mib(peakLive()));
      process.stderr.write(`big-train: step ${i + 1}/${steps} ${(wall[i] / 1000).toFixed(1)} s, loss ${loss.toFixed(4)}, heap ${heapAfterStepMiB[i]} MiB, peak live tensors ${peakLiveMiB[i]} MiB\n`);
    }
    const steady = wall.length > 1 ? wall.slice(1) : wall;
    return {
      backend: info.tfBackend, threads: info.threads, batch: batchSize, microBatch: micro, gradientCheckpointing: checkpointing, auto: auto.reason, optimizer: optimizer.name,
      params: vars.reduce((a, v) => a + v.size, 0), losses, steps: wall.length, stepS: median(steady) / 1000,
      stepTimesS: wall.map((t) => Math.round(t / 100) / 10), stepCpuS: cpu.map((t) => Math.round(t / 100) / 10),
      heapStartMiB: mib(heapStart), heapAfterStepMiB, peakLiveMiB, peakHeapMiB: mib(wasmHeapBytes()), peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  },

  /** Building the frozen-tower feature cache (JPEG decode → ViT-base; 5 captions each → DistilBERT-base). */
  async 'big-cache'() {
    const { core, info } = await setup();
    const train = await import('@clip-ts/train');
    const n = Number(opt.images);
    const root = await mkdtemp(join(tmpdir(), 'clip-bench-bigcache-'));
    try {
      await writeFlickr8k(root, { train: n, dev: 1, test: 1 });
      const data = { dataset: { kind: 'flickr8k', root, options: {} }, tokenizer: TOKENIZER, imageSize: 224, maxLength: SEQ };
      const { tokenizer, imageProcessor } = await train.loadPreprocessing(data);
      const { train: split } = await train.loadExperimentData(data);
      const model = core.CLIPModel.fromConfig(BIG, { seed: 0 });
      const t0 = performance.now();
      const c0 = cpuMs();
      const features = await train.loadOrComputeFeatures({
        model, dataset: split, tokenizer, imageProcessor, maxLength: SEQ, dir: join(root, 'cache'), batchSize,
      });
      const s = (performance.now() - t0) / 1000;
      // CPU seconds too: on a loaded machine they say what the wall clock cannot.
      const cpuS = (cpuMs() - c0) / 1000;
      features.dispose();
      const imagesPerS = n / s;
      // Flickr8k: 6000 train + 1000 val + 1000 test images, 5 captions each.
      return {
        backend: info.tfBackend, images: n, batch: batchSize, seconds: s, cpuS, imagesPerS, imagesPerCpuS: n / cpuS,
        flickr8kMinutes: 8000 / imagesPerS / 60, peakHeapMiB: mib(wasmHeapBytes()), peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      };
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },

  async train() {
    const { info, step, optimizer } = await trainingStep();
    const batch = makeBatch(batchSize);
    const t = await timed(() => step(batch));
    return { backend: info.tfBackend, threads: info.threads, optimizer: optimizer.name, batch: batchSize, patchDropout: Number(opt['patch-dropout']), samplesPerS: batchSize / (t.ms / 1000), ...t };
  },

  /** A plain 1024² · 1024² float32 product (XNNPACK's own path on wasm): the kernel rate, GFLOP/s. */
  async matmul() {
    const { info } = await setup();
    const n = 1024;
    const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
    const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
    const t = await timed(async () => {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    });
    tf.dispose([a, b]);
    return { backend: info.tfBackend, threads: info.threads, n, gflops: (2 * n ** 3) / (t.ms / 1000) / 1e9, ...t };
  },

  /** The small training step over `--workers` data-parallel replicas (1: the plain step), for the scaling row. */
  async 'train-parallel'() {
    const replicas = Number(opt.workers);
    // As runExperiment does (setup.ts threadsPerReplica): the replicas share the cores, wasm threads on top
    // of them would oversubscribe. --threads overrides (the 1 replica × N threads comparison).
    if (opt.threads === undefined && replicas > 1) opt.threads = String(Math.max(1, Math.floor(availableParallelism() / replicas)));
    const { core, info } = await setup();
    const train = await import('@clip-ts/train');
    const model = core.CLIPModel.fromConfig(SMALL, { seed: 0 });
    const optimizer = await makeOptimizer(model);
    const vars = model.trainableVariables();
    const pool = replicas > 1 ? await train.ReplicaPool.start(model, { replicas, maxBatch: batchSize, frozen: { vision: false, text: false } }) : null;
    const batch = makeBatch(batchSize);
    let steps = 0;
    let base;
    /** Main-thread-only time per timed step: the optimizer (every replica idles meanwhile) — Amdahl's serial part. */
    const optimizerMs = [];
    try {
      const t = await timed(async () => {
        // Phases of the timed steps only: a warm-up step (first allocations, weight packing) is far slower.
        if (steps === warmup) base = pool?.timings();
        steps += 1;
        const { value, grads } = pool ? pool.lossAndGrads(batch, vars, undefined) : tf.variableGrads(() => model.loss(batch, { training: true }), vars);
        const o0 = performance.now();
        optimizer.apply(grads);
        if (steps > warmup) optimizerMs.push(performance.now() - o0);
        tf.dispose(Object.values(grads));
        const v = (await value.data())[0];
        value.dispose();
        if (!Number.isFinite(v)) throw new Error(`loss is ${v}`);
      });
      // Wall ms per step in each phase of each replica (main first), averaged over the timed steps.
      const phases = pool?.timings().map((p, r) => Object.fromEntries(Object.entries(p).map(([k, ms]) => [k, Math.round((ms - (base?.[r]?.[k] ?? 0)) / (steps - warmup))])));
      return { backend: info.tfBackend, threads: info.threads, workers: replicas, batch: batchSize, samplesPerS: batchSize / (t.ms / 1000), ...t, optimizerMs: median(optimizerMs), phases };
    } finally {
      pool?.close();
    }
  },

  async profile() {
    const { info, step } = await trainingStep();
    const batch = makeBatch(batchSize);
    await step(batch);
    const p = await tf.profile(() => step(batch));
    const byKernel = new Map();
    const matmuls = new Map();
    for (const k of p.kernels) {
      if (k.name === 'BatchMatMul') {
        const key = k.inputShapes.map((sh) => `[${sh}]`).join('·');
        const e = matmuls.get(key) ?? { shapes: key, ms: 0, calls: 0 };
        e.ms += k.kernelTimeMs;
        e.calls += 1;
        matmuls.set(key, e);
      }
      const e = byKernel.get(k.name) ?? { kernel: k.name, ms: 0, calls: 0 };
      e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      e.calls += 1;
      byKernel.set(k.name, e);
    }
    const sorted = (m) => [...m.values()].sort((a, b) => b.ms - a.ms).map((e) => ({ ...e, ms: Math.round(e.ms) }));
    // customGrad ops show up as 'unnamed scope' and their time includes the kernels they ran (listed too).
    const kernels = sorted(byKernel).filter((e) => e.kernel !== 'unnamed scope');
    return {
      backend: info.tfBackend, batch: batchSize, totalKernelMs: kernels.reduce((s, e) => s + e.ms, 0),
      kernels, matmuls: sorted(matmuls).slice(0, 15),
    };
  },

  /**
   * Every matrix product of one training step (shapes logged from the BatchMatMul kernel during the step),
   * each timed as the step calls it ("ours": tf.matMul with its transposes and batch) against two plain
   * 2-D tf.matMul of the same FLOPs on the same backend: the square one (what "a plain matMul's rate"
   * means) and the same product with its batch folded into the rows and no transposes. Reps alternate
   * between them so machine load hits them alike. Batched products are also timed on the per-entry XNNPACK
   * path our GEMM replaced (on the backend's thread pool): the breakdown for a shape below target.
   */
  async matmuls() {
    const { info, step } = await trainingStep();
    // Internal switch, not public API: the built module the package entry itself loads (same instance).
    const { setBatchedMatMulPath } = await import('../packages/clip-core/dist/kernels/wasm.js').catch(() => ({}));
    const { setGemmThreading, gemmStats } = await import('../packages/clip-core/dist/kernels/wasm-gemm.js').catch(() => ({}));
    const batch = makeBatch(batchSize);
    const name = 'BatchMatMul';
    const stock = tf.getKernel(name, info.tfBackend);
    const seen = new Map();
    tf.unregisterKernel(name, info.tfBackend);
    tf.registerKernel({
      ...stock,
      kernelFunc: (args) => {
        const { a, b } = args.inputs;
        const { transposeA, transposeB } = args.attrs;
        const key = JSON.stringify([a.shape, b.shape, transposeA, transposeB]);
        const e = seen.get(key) ?? { a: a.shape, b: b.shape, transposeA, transposeB, calls: 0 };
        e.calls += 1;
        seen.set(key, e);
        return stock.kernelFunc(args);
      },
    });
    try {
      await step(batch);
    } finally {
      tf.unregisterKernel(name, info.tfBackend);
      tf.registerKernel(stock);
    }
    const products = [];
    for (const e of seen.values()) {
      const ra = e.a.length;
      const rb = e.b.length;
      const m = e.a[ra - (e.transposeA ? 1 : 2)];
      const k = e.a[ra - (e.transposeA ? 2 : 1)];
      const n = e.b[rb - (e.transposeB ? 2 : 1)];
      const outer = Math.max(tf.util.sizeFromShape(e.a.slice(0, -2)), tf.util.sizeFromShape(e.b.slice(0, -2)));
      const flop = 2 * outer * m * k * n;
      const side = Math.round(Math.cbrt(outer * m * k * n));
      const operands = {
        ours: [tf.randomNormal(e.a), tf.randomNormal(e.b), e.transposeA, e.transposeB],
        folded: [tf.randomNormal([outer * m, k]), tf.randomNormal([k, n]), false, false],
        square: [tf.randomNormal([side, side]), tf.randomNormal([side, side]), false, false],
      };
      const times = { ours: [], folded: [], square: [] };
      if (outer > 1 && setBatchedMatMulPath && info.tfBackend === 'wasm') {
        operands.xnnpack = operands.ours;
        times.xnnpack = [];
        // With threads, ours splits the batch over a pool of threads; the same GEMM on the calling thread
        // alone is the breakdown (per-thread rate) for a shape below target.
        if (info.threads > 1 && setGemmThreading) {
          operands.callingThread = operands.ours;
          times.callingThread = [];
        }
      }
      const once = (which) => {
        const [x, y, ta, tb] = operands[which];
        if (which === 'xnnpack') setBatchedMatMulPath('xnnpack');
        if (which === 'callingThread') setGemmThreading('calling-thread');
        const t0 = performance.now();
        tf.matMul(x, y, ta, tb).dispose();
        const ms = performance.now() - t0;
        if (which === 'xnnpack') setBatchedMatMulPath('gemm');
        if (which === 'callingThread') setGemmThreading('pool');
        return ms;
      };
      const pooledBefore = gemmStats?.pooled ?? 0;
      once('ours');
      // Whether ours ran on the pool (a counter, not a timing).
      const pooled = (gemmStats?.pooled ?? 0) > pooledBefore;
      for (const which of Object.keys(times)) once(which); // warm-up
      const r = Math.max(reps, 5);
      for (let i = 0; i < r; i++) for (const which of Object.keys(times)) times[which].push(once(which));
      for (const [x, y] of new Set(Object.values(operands))) tf.dispose([x, y]);
      const rate = (which, f) => f / median(times[which]) / 1e6;
      const gflops = { ours: rate('ours', flop), folded: rate('folded', flop), square: rate('square', 2 * side ** 3) };
      if (times.xnnpack) gflops.xnnpack = rate('xnnpack', flop);
      if (times.callingThread) gflops.callingThread = rate('callingThread', flop);
      // Noise: the spread of the square product's reps (interquartile range / median).
      const sq = [...times.square].sort((x, y) => x - y);
      const spread = (sq[Math.floor(0.75 * (sq.length - 1))] - sq[Math.floor(0.25 * (sq.length - 1))]) / median(times.square);
      products.push({
        product: `${e.a.length > 2 ? `[${e.a.slice(0, -2)}]× ` : ''}[${m},${k}]·[${k},${n}]${e.transposeA ? ' ᵀA' : ''}${e.transposeB ? ' ᵀB' : ''}`,
        a: e.a, b: e.b, transposeA: e.transposeA, transposeB: e.transposeB, callsPerStep: e.calls, gflop: flop / 1e9,
        oursMs: median(times.ours), gflops, vsSquare: gflops.ours / gflops.square, vsFolded: gflops.ours / gflops.folded,
        reps: r, squareSpread: spread, pooled,
      });
    }
    products.sort((x, y) => y.oursMs * y.callsPerStep - x.oursMs * x.callsPerStep);
    return { backend: info.tfBackend, threads: info.threads, batch: batchSize, products };
  },

  async infer() {
    const { core, info } = await setup();
    const model = core.CLIPModel.fromConfig(SMALL, { seed: 0 });
    const batch = makeBatch(batchSize);
    const run = async (f) => {
      const out = f();
      await out.data();
      out.dispose();
    };
    const img = await timed(() => run(() => model.encodeImages(batch.pixelValues)));
    const txt = await timed(() =>
      run(() => model.encodeTexts({ inputIds: batch.inputIds, attentionMask: batch.attentionMask })),
    );
    return {
      backend: info.tfBackend, batch: batchSize,
      imagesPerS: batchSize / (img.ms / 1000), textsPerS: batchSize / (txt.ms / 1000), image: img, text: txt,
    };
  },

  /**
   * Inference over `--workers` replicas (@clip-ts/train EmbedPool; 1: the plain single-process call with
   * `--threads`), small config, batch 32: images/s and texts/s of the embeddings, and of the image-tower
   * features the frozen-feature cache stores. The inference-scaling rows compare N replicas × 1 thread
   * with 1 replica × N threads.
   */
  async 'infer-parallel'() {
    const replicas = Number(opt.workers);
    if (opt.threads === undefined && replicas > 1) opt.threads = String(Math.max(1, Math.floor(availableParallelism() / replicas)));
    const { core, info } = await setup();
    const train = await import('@clip-ts/train');
    const model = core.CLIPModel.fromConfig(SMALL, { seed: 0 });
    const batch = makeBatch(batchSize);
    const text = { inputIds: batch.inputIds, attentionMask: batch.attentionMask };
    const t0 = performance.now();
    const pool = replicas > 1 ? await train.EmbedPool.start(model, { replicas }) : null;
    /** What a pool costs once, before its first batch (workers load tfjs and build their model copy). */
    const startMs = performance.now() - t0;
    const plain = async (f) => {
      const out = f();
      await out.data();
      out.dispose();
    };
    try {
      const img = await timed(() => (pool ? pool.embedImages(batch.pixelValues) : plain(() => model.encodeImages(batch.pixelValues))));
      const txt = await timed(() => (pool ? pool.embedTexts(text) : plain(() => model.encodeTexts(text))));
      const feat = await timed(() => (pool ? pool.imageFeatures(batch.pixelValues) : plain(() => model.imageEncoder.encode(batch.pixelValues, { training: false }))));
      return {
        backend: info.tfBackend, threads: info.threads, workers: replicas, batch: batchSize, startMs,
        imagesPerS: batchSize / (img.ms / 1000), textsPerS: batchSize / (txt.ms / 1000), featuresPerS: batchSize / (feat.ms / 1000),
        image: img, text: txt, features: feat,
      };
    } finally {
      pool?.close();
    }
  },

  async memory() {
    const { info, step, optimizer } = await trainingStep();
    const batch = makeBatch(batchSize);
    await step(batch); // optimizer moments and kernel caches exist after the first step
    const before = tf.memory().numTensors;
    const rssBefore = process.memoryUsage().rss;
    const steps = Number(opt.steps);
    for (let i = 0; i < steps; i++) await step(batch);
    const after = tf.memory().numTensors;
    return {
      backend: info.tfBackend, optimizer: optimizer.name, batch: batchSize, steps,
      numTensorsBefore: before, numTensorsAfter: after, tensorGrowth: after - before,
      rssBeforeMiB: Math.round(rssBefore / 2 ** 20), rssAfterMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  },

  async frozen() {
    const train = await import('@clip-ts/train');
    if (typeof train.runExperiment !== 'function') {
      throw new Error('@clip-ts/train does not export runExperiment (trainer + feature cache) yet');
    }
    const root = await mkdtemp(join(tmpdir(), 'clip-bench-flickr-'));
    try {
      // Small enough that the uncached runs (towers forward over every image each epoch) fit the bench's budget.
      const counts = { train: 32, dev: 8, test: 8 };
      await writeFlickr8k(root, counts);
      const epochs = 2;
      const run = async (cache) => {
        const runDir = join(root, cache ? 'run-cached' : 'run-uncached');
        const t0 = performance.now();
        await train.runExperiment(
          {
            seed: 0,
            backend: opt.backend,
            model: {
              vision: { config: SMALL.vision_config }, text: { config: SMALL.text_config },
              projectionDim: 256, head: 'linear', freeze: 'towers',
            },
            data: {
              dataset: { kind: 'flickr8k', root }, tokenizer: TOKENIZER, maxLength: SEQ, batchSize: batchSize,
            },
            schedule: { epochs, reduceLROnPlateau: false, earlyStopping: false },
            featureCache: { enabled: cache ? 'auto' : false },
            output: { runDir },
          },
          { runDir, io: { stdout: () => {}, stderr: () => {} } },
        );
        const totalS = (performance.now() - t0) / 1000;
        const history = (await readFile(join(runDir, 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
        const seconds = history.map((h) => h.seconds).filter((x) => typeof x === 'number');
        if (seconds.length === 0) throw new Error(`${runDir}/history.jsonl has no per-epoch 'seconds'`);
        return { epochS: median(seconds), epochsS: seconds, totalS };
      };
      const uncached = await run(false);
      const cached = await run(true);
      return {
        images: counts.train, batch: batchSize, epochs,
        uncachedEpochS: uncached.epochS, cachedEpochS: cached.epochS,
        uncached, cached,
      };
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },

  async pipeline() {
    // ClipImageProcessor (Node entry): plain JPEGs decode with libjpeg-turbo, resize with the Pillow
    // transcription (WebAssembly SIMD), normalise — on --workers threads writing into one reused shared
    // batch buffer (--workers 0: on this thread, --concurrency images at once).
    const enc = await import('@clip-ts/encoders/node');
    await (await import('@clip-ts/core')).initBackend(opt.backend);
    const files = (await readdir(opt.dir)).filter((f) => f.endsWith('.jpg')).sort().map((f) => join(opt.dir, f));
    const options = { resizer: opt.resizer, ...(opt.decoder ? { decoder: opt.decoder } : {}) };
    const processor = new enc.ClipImageProcessor(options);
    const workers = opt['image-workers'] !== undefined ? Number(opt['image-workers']) : availableParallelism();
    const concurrency = opt.concurrency ? Number(opt.concurrency) : availableParallelism();
    const out = processor.newBatchBuffer(batchSize);
    let next = 0;
    const t = await timed(async () => {
      const chosen = Array.from({ length: batchSize }, (_, j) => files[(next + j) % files.length]);
      next += batchSize;
      const buf = await processor.processFiles(chosen, { workers, concurrency, out });
      const pixels = tf.tensor4d(buf, [batchSize, 3, processor.height, processor.width]);
      if (pixels.shape.join() !== `${batchSize},3,224,224`) throw new Error(`bad batch shape ${pixels.shape}`);
      pixels.dispose(); // before the next batch refills `out` (the cpu backend would alias it)
    });
    await processor.close();
    return {
      batch: batchSize, files: files.length, options: processor.options, workers, concurrency,
      imagesPerS: batchSize / (t.ms / 1000), cpuMsPerImage: t.cpuMs / batchSize, ...t,
    };
  },

  async 'pipeline-stages'() {
    // CPU ms per image of each stage, one thread, warm buffers (what the pipeline row's workers run).
    const enc = { ...(await import('@clip-ts/encoders')), ...(await import('@clip-ts/encoders/node')) };
    const sharp = (await import('sharp')).default;
    const names = (await readdir(opt.dir)).filter((f) => f.endsWith('.jpg')).sort();
    const { readFileSync } = await import('node:fs');
    const bytes = names.map((f) => readFileSync(join(opt.dir, f)));
    const n = Math.max(64, Number(opt.images));
    const cpuPer = async (fn) => {
      for (let i = 0; i < 16; i++) await fn(i);
      const c0 = process.cpuUsage();
      for (let i = 0; i < n; i++) await fn(i);
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1000 / n;
    };
    const turbo = new enc.TurboJpegDecoder();
    const rgb = bytes.map((b) => { const d = turbo.decode(b); return { ...d, data: d.data.slice() }; });
    const scratch = new enc.ResizeScratch();
    const out = new Float32Array(new SharedArrayBuffer(3 * 224 * 224 * 4));
    const full = new enc.ClipImageProcessor();
    const r = {
      images: n,
      msPerImage: {
        readFileSync: await cpuPer((i) => readFileSync(join(opt.dir, names[i % names.length]))),
        decodeTurbo: await cpuPer((i) => turbo.decode(bytes[i % bytes.length])),
        decodeSharp: await cpuPer((i) => sharp(bytes[i % bytes.length]).removeAlpha().toColourspace('srgb').raw().toBuffer()),
        resizeSimd: await cpuPer((i) => { const d = rgb[i % rgb.length]; enc.resizeRgb8Into(d.data, d.width, d.height, 224, 224, 'bilinear', scratch); }),
        resizeJs: await cpuPer((i) => { const d = rgb[i % rgb.length]; enc.resizeRgb8Scalar(d.data, d.width, d.height, 224, 224, 'bilinear', scratch); }),
        endToEnd: await cpuPer((i) => full.processBufferInto(bytes[i % bytes.length], names[i % names.length], out, 0)),
      },
    };
    // The rest of endToEnd (copy into wasm memory, LUT normalise into the batch, JPEG header scan).
    r.msPerImage.rest = r.msPerImage.endToEnd - r.msPerImage.decodeTurbo - r.msPerImage.resizeSimd;
    return r;
  },
};

const run = tasks[task];
if (!run) {
  console.error(`unknown task '${task}'; expected one of ${Object.keys(tasks).join(', ')}`);
  process.exit(2);
}
try {
  const result = await run();
  console.log(JSON.stringify({ ok: true, task, ...result }));
} catch (err) {
  console.error(err?.stack ?? err); // the whole trace for whoever reads the task's stderr
  console.log(JSON.stringify({ ok: false, task, error: String(err?.message ?? err).split('\n')[0] }));
  process.exitCode = 1;
}
