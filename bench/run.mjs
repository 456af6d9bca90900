// `npm run bench`: clip-ts speed and memory against PyTorch on the same CPU, in one run so machine load
// hits both sides alike. Each measurement runs in its own process (bench/tasks.mjs, or
// bench/pytorch_reference.py); a row whose requirement is missing says why instead of failing the bench.
//
//   node bench/run.mjs [--json] [--quick] [--only train,patchdrop,infer,pipeline,frozen,memory]
//     --json   also write bench/results.json (docs/benchmarks.md is generated from it: bench/render-doc.mjs)
//     --quick  fewer repetitions (a smoke run; numbers are noisier)
//     --merge  with --json and --only: replace just the re-measured rows in the existing bench/results.json
import { execFileSync, spawn } from 'node:child_process';
import { cpus, freemem, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
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
  for (const backend of ['wasm', 'cpu', 'tensorflow']) {
    log(`train step: tfjs ${backend}`);
    // The pure-JS cpu backend is an order of magnitude slower: one step, no warm-up (it has no kernels to
    // compile), so the bench stays within its time budget.
    const slow = backend === 'cpu';
    const args = slow ? ['--reps', '1', '--warmup', '0', '--batch', '8'] : ['--reps', String(REPS), '--warmup', '1'];
    const r = await node('train', ['--backend', backend, ...args], 900);
    raw[`train-${backend}`] = r;
    rows.push({
      id: `train-${backend}`, name: `train step, small, batch ${slow ? 8 : 32} — tfjs ${backend}`, unit: 'samples/s',
      ours: r.ok ? r.samplesPerS : null, reference: refSps, ratio: r.ok ? ratio(r.samplesPerS, refSps) : null,
      target: backend === 'wasm' ? '≥ 0.25×' : undefined,
      met: backend === 'wasm' && r.ok && refSps ? r.samplesPerS / refSps >= 0.25 : undefined,
      unavailable: why(r),
      note: r.ok
        ? `${Math.round(r.ms)} ms/step (${slow ? 'one step at batch 8, no warm-up, to fit the time budget' : `median of ${r.reps}`}), ` +
          `CPU time ${Math.round(r.cpuMs)} ms/step` +
          (refCpu ? ` vs PyTorch ${Math.round(refCpu)} ms` : '') +
          `; optimizer ${r.optimizer}`
        : undefined,
    });
  }
  log('train step: per-kernel profile (wasm)');
  const p = await node('profile', ['--backend', 'wasm'], 600);
  if (p.ok) profile = p;
  else rows.push({ id: 'profile', name: 'per-kernel profile (wasm)', unavailable: p.error });
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

if (want('pipeline')) {
  log('image pipeline: generating JPEGs');
  const dir = await mkdtemp(join(tmpdir(), 'clip-bench-jpeg-'));
  try {
    await writeBenchImages(dir, 64);
    log('image pipeline: clip-ts vs torchvision');
    const ref = await torch(['pipeline', dir, '--reps', String(REPS + 2), '--warmup', '1']);
    raw.pytorchPipeline = ref;
    const refIps = ref.ok !== false ? ref.images_per_s : null;
    // The default resizer is a transcription of Pillow's (bit-identical to torchvision's preprocessing);
    // 'sharp' resizes inside libvips (multi-threaded, within ~5/255 of Pillow when shrinking).
    for (const [resizer, label] of [['pillow', 'default, Pillow-identical resize'], ['sharp', "resizer: 'sharp' (libvips)"]]) {
      const ours = await node('pipeline', ['--dir', dir, '--resizer', resizer, '--reps', String(REPS + 2), '--warmup', '1'], 600);
      raw[resizer === 'pillow' ? 'pipeline' : 'pipelineSharp'] = ours;
      const r = ours.ok ? ratio(ours.imagesPerS, refIps) : null;
      rows.push({
        id: resizer === 'pillow' ? 'pipeline' : 'pipeline-sharp',
        name: `image pipeline (${label}): JPEG decode + resize 224 + normalise → float32 [32,3,224,224]`,
        unit: 'images/s', ours: ours.ok ? ours.imagesPerS : null, reference: refIps, ratio: r,
        target: '≥ 2× torchvision', met: r === null ? undefined : r >= 2, unavailable: why(ours),
        note: `64 generated JPEGs (500×375 and similar, textured + noise); reference: PIL + torchvision Resize/ToTensor/Normalize` +
          (ref.ok === false ? `; torchvision: ${ref.error}` : ''),
      });
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
