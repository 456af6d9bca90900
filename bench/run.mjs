// `npm run bench`: clip-ts speed and memory against PyTorch on the same CPU, in one run so machine load
// hits both sides alike. Each measurement runs in its own process (bench/tasks.mjs, or
// bench/pytorch_reference.py); a row whose requirement is missing says why instead of failing the bench.
//
//   node bench/run.mjs [--json] [--quick] [--big] [--only train,scaling,matmuls,patchdrop,infer,infer-scaling,pipeline,frozen,memory,threads,big,...]
//     --json   also write bench/results.json (docs/benchmarks.md is generated from it: bench/render-doc.mjs)
//     --quick  fewer repetitions (a smoke run; numbers are noisier)
//     --merge  with --json and --only: replace just the re-measured rows in the existing bench/results.json
//     --big    also the reference's towers (ViT-base/16 + DistilBERT-base): one batch-32 training step on wasm
//              (micro-batch auto) and building the feature cache; tens of minutes on a 2-core machine
import { execFileSync, spawn } from 'node:child_process';
import { availableParallelism, cpus, freemem, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { clearTimeout, setTimeout } from 'node:timers';
import { writeBenchImages } from './images.mjs';
import { machineLine, profileTable, resultsTable } from './table.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    merge: { type: 'boolean', default: false },
    big: { type: 'boolean', default: false },
  },
});
const only = opt.only ? new Set(opt.only.split(',')) : undefined;
const want = (group) => !only || only.has(group);
const REPS = opt.quick ? 2 : 3;
const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** Run a child process; resolve with its last stdout line parsed as JSON, or { ok: false, error }. */
function runJson(cmd, args, timeoutS) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: HERE, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last));
      } catch {
        const why = signal ? `killed after ${timeoutS} s` : `exit ${code}: ${(err.trim().split('\n').pop() ?? '').slice(0, 200)}`;
        resolve({ ok: false, error: why });
      }
    });
  });
}

const node = (task, args, timeoutS = 600) => runJson(process.execPath, [join(HERE, 'tasks.mjs'), task, ...args], timeoutS);

/** The first python3 that imports torch and torchvision: $PYTHON, python3 on PATH, then Debian's. */
function findPython() {
  const tried = [];
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    try {
      const v = execFileSync(py, ['-c', 'import torch, torchvision, PIL, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__)'], {
        encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000,
      }).trim().split(' ');
      return { python: py, label: `Python ${v[0]}, torch ${v[1]}, torchvision ${v[2]}` };
    } catch {
      tried.push(py);
    }
  }
  return {
    missing:
      `no python3 with torch + torchvision (tried ${tried.join(', ')}); on Debian: ` +
      'apt-get install python3-torch python3-torchvision libopenblas0-pthread, then run with /usr/bin/python3 (or set PYTHON)',
  };
}

const py = findPython();
const torch = (args, timeoutS = 600) =>
  py.python ? runJson(py.python, [join(HERE, 'pytorch_reference.py'), ...args], timeoutS) : Promise.resolve({ ok: false, error: py.missing });

const tfjsVersion = JSON.parse(await readFile(join(HERE, '..', 'node_modules', '@tensorflow', 'tfjs-core', 'package.json'), 'utf8')).version;
const meta = {
  date: new Date().toISOString(),
  cpuModel: cpus()[0]?.model ?? 'unknown CPU',
  cpus: cpus().length,
  // What the wasm rows run on unless a row says otherwise: initBackend's default ($CLIP_WASM_THREADS, else every core).
  wasmThreads: process.env.CLIP_WASM_THREADS ?? String(availableParallelism()),
  memGiB: Math.round(totalmem() / 2 ** 30),
  freeMemGiB: Math.round(freemem() / 2 ** 30),
  os: `${platform()} ${release()}`,
  node: process.version,
  tfjs: tfjsVersion,
  python: py.label,
  loadStart: loadavg(),
  quick: opt.quick,
};
const rows = [];
const raw = {};
let profile;
const ratio = (a, b) => (a && b ? a / b : null);
const why = (r) => (r.ok ? undefined : r.error);

if (want('train')) {
  log('train step: PyTorch reference');
  const ref = await torch(['train', '--reps', String(REPS), '--warmup', '1']);
  raw.pytorchTrain = ref;
  const refSps = ref.ok !== false ? ref.samples_per_s : null;
  const refCpu = ref.ok !== false && ref.cpu_ms ? ref.cpu_ms : null;
  rows.push({
    id: 'train-pytorch', name: 'train step, small, batch 32 — PyTorch CPU (2 threads)', unit: 'samples/s',
    ours: null, reference: refSps, unavailable: ref.ok === false ? ref.error : undefined,
    note: ref.ok !== false ? `${Math.round(ref.step_ms)} ms/step, torch ${ref.torch}` : undefined,
  });
  // The headline wasm row is the configuration a run gets by default: training.workers 'auto' resolved by
  // the library's own rule for this machine (replicas × threads per replica), measured vs PyTorch.
  const { resolveWorkers, threadsPerReplica } = await import('@clip-ts/train');
  const autoReplicas = resolveWorkers('auto', { backend: 'wasm', useCache: false, batchSize: 32 });
  const autoThreads = threadsPerReplica(autoReplicas) ?? availableParallelism();
  log(`train step: tfjs wasm, default config (${autoReplicas} replica(s) × ${autoThreads} thread(s))`);
  const d = await node('train-parallel', ['--backend', 'wasm', '--workers', String(autoReplicas), '--threads', String(autoThreads), '--reps', String(REPS), '--warmup', '1'], 1200);
  raw['train-wasm-default'] = d;
  rows.push({
    id: 'train-wasm-default', name: `train step, small, batch 32 — tfjs wasm, default config (training.workers 'auto' = ${autoReplicas} replica(s) × ${autoThreads} wasm thread(s) here)`, unit: 'samples/s',
    ours: d.ok ? d.samplesPerS : null, reference: refSps, ratio: d.ok ? ratio(d.samplesPerS, refSps) : null,
    target: '≥ 0.6× (issue 12; stretch 1×)', met: d.ok && refSps ? d.samplesPerS / refSps >= 0.6 : undefined, unavailable: why(d),
    note: d.ok ? `${Math.round(d.ms)} ms/step (median of ${d.reps}), CPU time ${Math.round(d.cpuMs)} ms/step` + (refCpu ? ` vs PyTorch ${Math.round(refCpu)} ms` : '') : undefined,
  });
  for (const backend of ['wasm', 'cpu', 'tensorflow']) {
    log(`train step: tfjs ${backend}`);
    // The pure-JS cpu backend is an order of magnitude slower: one step, no warm-up (it has no kernels to
    // compile), so the bench stays within its time budget.
    const slow = backend === 'cpu';
    const args = slow ? ['--reps', '1', '--warmup', '0', '--batch', '8'] : ['--reps', String(REPS), '--warmup', '1'];
    const r = await node('train', ['--backend', backend, ...args], 900);
    raw[`train-${backend}`] = r;
    rows.push({
      id: `train-${backend}`, name: `train step, small, batch ${slow ? 8 : 32} — tfjs ${backend}${backend === 'wasm' ? ', one process (every core as wasm threads)' : ''}`, unit: 'samples/s',
      ours: r.ok ? r.samplesPerS : null, reference: refSps, ratio: r.ok ? ratio(r.samplesPerS, refSps) : null,
      unavailable: why(r),
      note: r.ok
        ? `${Math.round(r.ms)} ms/step (${slow ? 'one step at batch 8, no warm-up, to fit the time budget' : `median of ${r.reps}`}), ` +
          `CPU time ${Math.round(r.cpuMs)} ms/step` +
          (refCpu ? ` vs PyTorch ${Math.round(refCpu)} ms` : '') +
          `; optimizer ${r.optimizer}` +
          (r.threads !== undefined ? `; ${r.threads} wasm thread${r.threads === 1 ? '' : 's'}` : '')
        : undefined,
    });
  }
  log('train step: per-kernel profile (wasm)');
  const p = await node('profile', ['--backend', 'wasm'], 600);
  if (p.ok) profile = p;
  else rows.push({ id: 'profile', name: 'per-kernel profile (wasm)', unavailable: p.error });
}

if (want('scaling')) {
  // Data-parallel scaling on the small step, same run: 1 replica × 1 wasm thread, `cores` replicas × 1
  // thread (training.workers), and 1 replica × `cores` threads (the threaded build alone), so the row
  // says both what replicas gain and whether they beat threads. CPU time is the process's (all threads).
  const n = cpus().length;
  const run = async (workers, threads) => {
    log(`train step: wasm, ${workers} replica(s) × ${threads} thread(s)`);
    const r = await node('train-parallel', ['--backend', 'wasm', '--workers', String(workers), '--threads', String(threads), '--reps', String(REPS), '--warmup', '1'], 1200);
    raw[`train-parallel-${workers}x${threads}`] = r;
    return r;
  };
  const one = await run(1, 1);
  const replicas = await run(n, 1);
  const threads = await run(1, n);
  const step = (r) => `${Math.round(r.ms)} ms/step, CPU ${Math.round(r.cpuMs)} ms/step`;
  const speedup = one.ok && replicas.ok ? replicas.samplesPerS / one.samplesPerS : null;
  rows.push({
    id: 'train-scaling-wasm', name: `train step, small, batch 32 — tfjs wasm, ${n} replicas vs 1 (training.workers), 1 wasm thread each`, unit: '×',
    ours: speedup, reference: null, target: '≥ 1.7×', met: speedup === null ? undefined : speedup >= 1.7,
    unavailable: why(one) ?? why(replicas),
    note: speedup === null ? undefined : `1 replica: ${step(one)}; ${n} replicas: ${step(replicas)} (medians of ${one.reps} / ${replicas.reps}); machine has ${n} cores`,
  });
  rows.push({
    id: 'train-replicas-vs-threads-wasm', name: `train step, small, batch 32 — tfjs wasm, ${n} replicas × 1 thread vs 1 replica × ${n} threads`, unit: 'samples/s',
    ours: replicas.ok ? replicas.samplesPerS : null, reference: threads.ok ? threads.samplesPerS : null,
    ratio: replicas.ok && threads.ok ? replicas.samplesPerS / threads.samplesPerS : null,
    unavailable: why(replicas) ?? why(threads),
    note: replicas.ok && threads.ok ? `reference column = 1 replica × ${n} wasm threads (${step(threads)}), clip-ts column = ${n} replicas × 1 thread (${step(replicas)})` : undefined,
  });
}

if (want('matmuls')) {
  // At 1 wasm thread (what each data-parallel training replica runs on) and at every core (one process, the
  // backend's thread pool); ours and the plain products always at the same thread count.
  const counts = [...new Set([1, availableParallelism()])];
  for (const threads of counts) {
    const on = `${threads} wasm thread${threads === 1 ? '' : 's'}`;
    log(`matrix products of one training step: ours vs plain tf.matMul (wasm, ${on})`);
    const r = await node('matmuls', ['--backend', 'wasm', '--threads', String(threads), '--reps', String(REPS + 8)], 900);
    raw[threads === 1 ? 'matmuls' : `matmuls${threads}t`] = r;
    const tag = threads === 1 ? '' : ` @${threads}t`;
    if (!r.ok) {
      rows.push({ id: `matmuls${tag}`, name: `matrix products of a training step (wasm, ${on})`, unavailable: r.error });
      continue;
    }
    // One row per product shape that takes ≥ 1% of the step's product time; the rest are summed in a note.
    const total = r.products.reduce((s, p) => s + p.oursMs * p.callsPerStep, 0);
    const small = r.products.filter((p) => p.oursMs * p.callsPerStep < 0.01 * total);
    for (const p of r.products.filter((x) => !small.includes(x))) {
      const xnn = p.gflops.xnnpack === undefined ? '' : `; the per-entry XNNPACK path it replaced (${on}): ${p.gflops.xnnpack.toFixed(1)} GFLOP/s (${(p.gflops.xnnpack / p.gflops.square).toFixed(2)}×)`;
      // With threads, ours splits a batched product over a pool of threads; its calling-thread rate is the breakdown.
      const pool = p.gflops.callingThread === undefined ? '' : `; ours ${p.pooled ? `on ${threads} threads (pool)` : 'NOT on the pool'}, on the calling thread alone ${p.gflops.callingThread.toFixed(1)} GFLOP/s (${(p.gflops.callingThread / p.gflops.square).toFixed(2)}×)`;
      rows.push({
        id: `matmul ${p.product}${tag}`, name: `matMul ${p.product} (×${p.callsPerStep}/step), ${on} — ours vs plain square matMul, same FLOPs`,
        unit: 'GFLOP/s', ours: p.gflops.ours, reference: p.gflops.square, ratio: p.vsSquare,
        target: '≥ 0.8×', met: p.vsSquare >= 0.8,
        note: `${p.oursMs.toFixed(1)} ms/call, median of ${p.reps} alternating reps (square product's interquartile spread ${(100 * p.squareSpread).toFixed(0)}%); same product with batch folded into rows, no transposes: ${p.gflops.folded.toFixed(1)} GFLOP/s (ours ${p.vsFolded.toFixed(2)}×)${xnn}${pool}`,
      });
    }
    if (small.length) {
      rows.push({
        id: `matmul small${tag}`, name: `matMul: ${small.length} smaller product shapes (< 1% of the step's product time each), ${on}`,
        unit: 'ms/step', ours: small.reduce((s, p) => s + p.oursMs * p.callsPerStep, 0),
        note: small.map((p) => `${p.product} ${p.vsSquare.toFixed(2)}×`).join('; '),
      });
    }
  }
}

if (want('infer')) {
  log('inference');
  const ours = await node('infer', ['--backend', 'wasm', '--reps', String(REPS + 2), '--warmup', '1'], 600);
  const ref = await torch(['infer', '--reps', String(REPS + 2), '--warmup', '1']);
  raw.infer = ours;
  raw.pytorchInfer = ref;
  const refOk = ref.ok !== false;
  for (const [key, refKey, label] of [['imagesPerS', 'images_per_s', 'images'], ['textsPerS', 'texts_per_s', 'texts']]) {
    rows.push({
      id: `infer-${label}`, name: `inference, small ${label === 'images' ? 'image' : 'text'} tower + head, batch 32 — wasm`,
      unit: `${label}/s`, ours: ours.ok ? ours[key] : null, reference: refOk ? ref[refKey] : null,
      ratio: ours.ok && refOk ? ratio(ours[key], ref[refKey]) : null, unavailable: why(ours),
      note: refOk ? undefined : `PyTorch: ${ref.error}`,
    });
  }
}

if (want('infer-scaling')) {
  // Inference over the replica pool (EmbedPool: `clip embed`, zero-shot, the feature cache) against the
  // threaded build on the same cores, same run: N replicas × 1 wasm thread vs 1 replica × N threads.
  const n = cpus().length;
  const run = async (workers, threads) => {
    log(`inference: wasm, ${workers} replica(s) × ${threads} thread(s)`);
    const r = await node('infer-parallel', ['--backend', 'wasm', '--workers', String(workers), '--threads', String(threads), '--reps', String(REPS + 2), '--warmup', '1'], 900);
    raw[`infer-parallel-${workers}x${threads}`] = r;
    return r;
  };
  const replicas = await run(n, 1);
  const threads = await run(1, n);
  for (const [key, label, what] of [['imagesPerS', 'images', 'image embeddings'], ['textsPerS', 'texts', 'text embeddings'], ['featuresPerS', 'features', 'image-tower features (feature cache)']]) {
    const sub = { imagesPerS: 'image', textsPerS: 'text', featuresPerS: 'features' }[key];
    rows.push({
      id: `infer-replicas-vs-threads-${label}`, name: `inference, small config, batch 32, ${what} — wasm, ${n} replicas × 1 thread vs 1 replica × ${n} threads`,
      unit: `${label === 'texts' ? 'texts' : 'images'}/s`, ours: replicas.ok ? replicas[key] : null, reference: threads.ok ? threads[key] : null,
      ratio: replicas.ok && threads.ok ? replicas[key] / threads[key] : null, unavailable: why(replicas) ?? why(threads),
      note: replicas.ok && threads.ok
        ? `reference column = 1 replica × ${n} wasm threads (${Math.round(threads[sub].ms)} ms/batch, CPU ${Math.round(threads[sub].cpuMs)} ms), clip-ts column = ${n} replicas × 1 thread, @clip-ts/train EmbedPool (${Math.round(replicas[sub].ms)} ms/batch, CPU ${Math.round(replicas[sub].cpuMs)} ms)`
        : undefined,
    });
  }
}

if (want('pipeline')) {
  log('image pipeline: generating JPEGs');
  const dir = await mkdtemp(join(tmpdir(), 'clip-bench-jpeg-'));
  try {
    await writeBenchImages(dir, 64);
    log('image pipeline: clip-ts vs torchvision');
    const workers = cpus().length;
    const ref = await torch(['pipeline', dir, '--reps', String(REPS + 2), '--warmup', '1']);
    const loader = await torch(['pipeline-loader', dir, '--workers', String(workers), '--reps', String(REPS + 4), '--warmup', '2']);
    raw.pytorchPipeline = ref;
    raw.pytorchPipelineLoader = loader;
    const refIps = ref.ok !== false ? ref.images_per_s : null;
    const loaderIps = loader.ok !== false ? loader.images_per_s : null;
    const what = 'JPEG decode + resize 224 + normalise → float32 [32,3,224,224]';
    const note = '64 generated JPEGs (500×375 and similar, textured + noise, q90); reference: PIL + torchvision Resize/ToTensor/Normalize';
    // Per-stage CPU ms/image (one thread, warm buffers): where the time goes, for the notes.
    const stages = await node('pipeline-stages', ['--dir', dir, '--images', '256'], 600);
    raw.pipelineStages = stages;
    const s = stages.ok ? stages.msPerImage : undefined;
    const stageNote = s
      ? `; CPU ms/image, one thread: read ${s.readFileSync.toFixed(2)}, libjpeg-turbo decode ${s.decodeTurbo.toFixed(2)} ` +
        `(sharp: ${s.decodeSharp.toFixed(2)}), Pillow resize in wasm SIMD ${s.resizeSimd.toFixed(2)} (JS: ${s.resizeJs.toFixed(2)}), ` +
        `rest (copy + normalise) ${s.rest.toFixed(2)}; whole image ${s.endToEnd.toFixed(2)}`
      : `; stages: ${stages.error}`;
    const variants = [
      // Default: libjpeg-turbo (fast IDCT: ≤ 8 grey levels from Pillow's decode, test/image-pipeline.test.ts),
      // Pillow-exact resize (wasm SIMD), on `workers` threads into a reused shared batch buffer.
      { id: 'pipeline', args: [], label: `default: libjpeg-turbo + Pillow resize (wasm SIMD), ${workers} worker threads`, target: true },
      // decoder 'sharp': bit-identical to PIL + torchvision (sharp's JPEG decode is Pillow's).
      { id: 'pipeline-pillow', args: ['--decoder', 'sharp'], label: `decoder: 'sharp' (Pillow-identical pixels), ${workers} worker threads` },
      { id: 'pipeline-1worker', args: ['--image-workers', '1'], label: 'default, 1 worker thread' },
    ];
    for (const v of variants) {
      const ours = await node('pipeline', ['--dir', dir, ...v.args, '--reps', String(REPS + 2), '--warmup', '2'], 600);
      raw[{ pipeline: 'pipeline', 'pipeline-pillow': 'pipelinePillow', 'pipeline-1worker': 'pipeline1Worker' }[v.id]] = ours;
      const r = ours.ok ? ratio(ours.imagesPerS, refIps) : null;
      rows.push({
        id: v.id,
        name: `image pipeline (${v.label}): ${what} — vs torchvision single-process`,
        unit: 'images/s', ours: ours.ok ? ours.imagesPerS : null, reference: refIps, ratio: r,
        target: v.target ? '≥ 2× torchvision' : undefined,
        met: v.target && r !== null ? r >= 2 : undefined, unavailable: why(ours),
        note: note + (ours.ok ? `; CPU ms/image: clip-ts ${ours.cpuMsPerImage.toFixed(2)} (all threads)` : '') +
          (ref.ok !== false && ref.cpu_ms_per_image !== undefined ? `, torchvision ${ref.cpu_ms_per_image.toFixed(2)}` : '') +
          (v.target ? stageNote : '') + (ref.ok === false ? `; torchvision: ${ref.error}` : ''),
      });
      if (v.target) {
        rows.push({
          id: 'pipeline-loader',
          name: `image pipeline (default) vs torch DataLoader, ${workers} workers each: ${what}`,
          unit: 'images/s', ours: ours.ok ? ours.imagesPerS : null, reference: loaderIps,
          ratio: ours.ok ? ratio(ours.imagesPerS, loaderIps) : null, unavailable: why(ours),
          note: `clip-ts: ${workers} worker threads writing into one shared batch buffer; reference: same torchvision transform in ` +
            `torch.utils.data.DataLoader(num_workers=${workers}, batch_size=32)` + (loader.ok === false ? `; DataLoader: ${loader.error}` : ''),
        });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (want('patchdrop')) {
  // FLIP patch dropout (issue 14 §5): the same small training step with p = 0 and p = 0.5 in one bench run,
  // so machine load hits both alike. Speed only; the accuracy effect is measured by the demo ablation.
  const steps = {};
  for (const p of ['0', '0.5']) {
    log(`train step: tfjs wasm, patch dropout ${p}`);
    steps[p] = await node('train', ['--backend', 'wasm', '--patch-dropout', p, '--reps', String(REPS), '--warmup', '1'], 900);
    raw[`train-wasm-patchdrop-${p}`] = steps[p];
  }
  const [off, on] = [steps['0'], steps['0.5']];
  const ok = off.ok !== false && on.ok !== false;
  rows.push({
    id: 'patch-dropout', name: 'train step, small, batch 32, tfjs wasm — patch dropout 0.5 vs 0 (speed-up)', unit: '×',
    ours: ok ? off.ms / on.ms : null,
    unavailable: ok ? undefined : why(off.ok === false ? off : on),
    note: ok ? `${Math.round(off.ms)} ms/step with all 196 patches, ${Math.round(on.ms)} ms/step keeping 98 (medians of ${off.reps} / ${on.reps})` : undefined,
  });
}

if (want('frozen')) {
  log('frozen training with and without the feature cache');
  const r = await node('frozen', ['--backend', 'wasm', '--batch', '16'], 900);
  raw.frozen = r;
  rows.push({
    id: 'frozen', name: 'frozen-tower epoch (generated Flickr8k-format set) — uncached / cached', unit: 's',
    ours: r.ok ? r.cachedEpochS : null, reference: r.ok ? r.uncachedEpochS : null,
    ratio: r.ok ? r.uncachedEpochS / r.cachedEpochS : null, target: '≥ 20× faster cached',
    met: r.ok ? r.uncachedEpochS / r.cachedEpochS >= 20 : undefined, unavailable: why(r),
    note: r.ok
      ? `runExperiment, towers frozen, ${r.images} train images (500×375 JPEGs), batch ${r.batch}, median of ${r.epochs} epochs; ` +
        'reference column = epoch without the cache, clip-ts column = with it; whole runs incl. test eval: ' +
        `${Math.round(r.uncached.totalS)} s uncached, ${Math.round(r.cached.totalS)} s cached (incl. building the cache)`
      : undefined,
  });
}

if (opt.big && want('big')) {
  log('reference towers: three ViT-base/16 + DistilBERT-base training steps, batch 32, wasm, micro-batch auto');
  // Three steps, all timed: the first also creates Adam's moments; stepS is the median of the later ones.
  const r = await node('big-train', ['--backend', 'wasm'], 7200);
  raw.bigTrain = r;
  rows.push({
    id: 'big-train', name: 'train step, ViT-base/16 + DistilBERT-base (152 M params), batch 32 — wasm', unit: 's/step',
    ours: r.ok ? r.stepS : null, reference: null, target: 'completes', met: r.ok, unavailable: why(r),
    note: r.ok
      ? `exact micro-batched step, ${r.microBatch} rows per tower pass (${r.auto}); median of steps 2–${r.steps} ` +
        `(${r.stepTimesS.join(' s, ')} s); wasm heap after each step ${r.heapAfterStepMiB.join(', ')} MiB, ` +
        `peak RSS ${r.peakRssMiB} MiB; optimizer ${r.optimizer}`
      : undefined,
  });
  log('reference towers: building the frozen-tower feature cache with ViT-base + DistilBERT-base');
  const c = await node('big-cache', ['--backend', 'wasm', '--images', '64', '--batch', '16'], 3600);
  raw.bigCache = c;
  rows.push({
    id: 'big-cache', name: 'feature cache build, ViT-base/16 + DistilBERT-base (JPEG → features, 5 captions/image) — wasm', unit: 'images/s',
    ours: c.ok ? c.imagesPerS : null, reference: null, unavailable: why(c),
    note: c.ok
      ? `${c.images} generated 500×375 JPEGs, batch ${c.batch}; the reference's frozen experiment (Flickr8k, 8000 images) ` +
        `would spend ~${Math.round(c.flickr8kMinutes)} min building its cache once, then trains only the heads; peak RSS ${c.peakRssMiB} MiB`
      : undefined,
  });
}

if (want('memory')) {
  log('memory: 50 training steps (wasm)');
  const steps = opt.quick ? 10 : 50;
  const r = await node('memory', ['--backend', 'wasm', '--batch', '4', '--steps', String(steps)], 900);
  raw.memory = r;
  rows.push({
    id: 'memory-tensors', name: `tensor growth over ${steps} training steps (wasm, batch 4)`, unit: 'tensors',
    ours: r.ok ? r.tensorGrowth : null, target: '0', met: r.ok ? r.tensorGrowth === 0 : undefined, unavailable: why(r),
    note: r.ok ? `tf.memory().numTensors ${r.numTensorsBefore} before, ${r.numTensorsAfter} after; optimizer ${r.optimizer}` : undefined,
  });
  rows.push({
    id: 'memory-rss', name: `peak RSS over ${steps} training steps (wasm, batch 4)`, unit: 'MiB',
    ours: r.ok ? r.peakRssMiB : null, unavailable: why(r),
    note: r.ok ? `RSS ${r.rssBeforeMiB} MiB after the first step, ${r.rssAfterMiB} MiB at the end` : undefined,
  });
}

if (want('threads')) {
  // Same task, same process layout, only the wasm thread count differs: the threaded build's speed-up.
  const n = Number(meta.wasmThreads);
  const pair = async (task, args) => {
    log(`wasm threads 1 vs ${n}: ${task}`);
    const one = await node(task, ['--backend', 'wasm', '--threads', '1', ...args], 900);
    const many = await node(task, ['--backend', 'wasm', '--threads', String(n), ...args], 900);
    raw[`threads-${task}`] = { one, many };
    return { one, many, err: why(one) ?? why(many) };
  };
  const mm = await pair('matmul', ['--reps', String(REPS + 2), '--warmup', '1']);
  rows.push({
    id: 'threads-matmul', name: `wasm threads 1 vs ${n}: 1024² matMul`, unit: 'GFLOP/s',
    ours: mm.err ? null : mm.many.gflops, reference: mm.err ? null : mm.one.gflops,
    ratio: mm.err ? null : mm.many.gflops / mm.one.gflops, unavailable: mm.err,
    note: mm.err ? undefined : `reference column = 1 thread, clip-ts column = ${mm.many.threads} threads (XNNPACK pool; tfjs caps it at 8)`,
  });
  const tr = await pair('train', ['--reps', String(REPS), '--warmup', '1']);
  rows.push({
    id: 'threads-train', name: `wasm threads 1 vs ${n}: train step, small, batch 32`, unit: 'samples/s',
    ours: tr.err ? null : tr.many.samplesPerS, reference: tr.err ? null : tr.one.samplesPerS,
    ratio: tr.err ? null : tr.many.samplesPerS / tr.one.samplesPerS, unavailable: tr.err,
    note: tr.err
      ? undefined
      : `reference column = 1 thread (${Math.round(tr.one.ms)} ms/step), clip-ts column = ${tr.many.threads} threads (${Math.round(tr.many.ms)} ms/step); ` +
        `CPU time ${Math.round(tr.one.cpuMs)} vs ${Math.round(tr.many.cpuMs)} ms/step`,
  });
}

meta.loadEnd = loadavg();
const results = { meta, rows, profile, raw };
console.log(`\nclip-ts bench — ${machineLine(meta)}\n`);
console.log(resultsTable(results));
if (profile) console.log(`\nPer-kernel time of one wasm training step (tf.profile, batch ${profile.batch}):\n\n${profileTable(profile)}`);
if (opt.json) {
  const path = join(HERE, 'results.json');
  if (opt.merge) {
    // Re-measured rows replace their namesakes in the existing results; everything else is kept as it was.
    const previous = JSON.parse(await readFile(path, 'utf8'));
    const fresh = new Set(rows.map((r) => r.id));
    results.rows = [...previous.rows.map((r) => (fresh.has(r.id) ? rows.find((x) => x.id === r.id) : r)), ...rows.filter((r) => !previous.rows.some((p) => p.id === r.id))];
    results.meta = { ...previous.meta, remeasured: [...(previous.meta.remeasured ?? []), { date: meta.date, rows: [...fresh], loadStart: meta.loadStart, loadEnd: meta.loadEnd }] };
    results.profile = profile ?? previous.profile;
    results.raw = { ...previous.raw, ...raw };
  }
  await writeFile(`${path}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  await rm(path, { force: true });
  await (await import('node:fs/promises')).rename(`${path}.tmp`, path);
  log(`wrote ${path}`);
}
