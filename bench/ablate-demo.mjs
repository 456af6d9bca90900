// The demo's ablation: run `clip demo`'s setting once per named variant (packages/clip-cli/src/ablation/
// variants.ts), one after another, and write a JSON and a markdown table (held-out and seen top-1 among the
// 30 names, test loss, epochs, wall and CPU time). On a shared machine compare accuracy at equal epochs and
// cost by CPU time: wall time grows with the load, CPU time of single-threaded wasm does not.
//
//   npm run build && node bench/ablate-demo.mjs [--only a,b] [--epochs N] [--quick] [--out DIR] [--backend wasm] [--threads N]
//     --only    variants to run, in this order (default: all)
//     --epochs  every variant trains this many epochs (screening)
//     --quick   the variants on the demo's --quick sliver (a smoke run; accuracy not meaningful)
//     --threads wasm threads (default 2 in Node); 1 makes CPU time comparable on a busy machine, where
//               threaded wasm spends CPU waiting for its threads
//     --out     output directory (default runs/ablate-demo): <variant>/ run dirs, ablation.json, ablation.md
import { parseArgs } from 'node:util';
import { runDemoAblation } from '@clip-ts/cli';

const { values: opt } = parseArgs({
  options: {
    only: { type: 'string' },
    epochs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'runs/ablate-demo' },
    backend: { type: 'string' },
    threads: { type: 'string' },
  },
});
const epochs = opt.epochs === undefined ? undefined : Number(opt.epochs);
if (epochs !== undefined && !(Number.isInteger(epochs) && epochs > 0)) {
  process.stderr.write(`--epochs must be a positive integer, got '${opt.epochs}'\n`);
  process.exit(2);
}
const threads = opt.threads === undefined ? undefined : Number(opt.threads);
if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
  process.stderr.write(`--threads must be a positive integer, got '${opt.threads}'\n`);
  process.exit(2);
}
const io = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };
const report = await runDemoAblation(
  {
    out: opt.out,
    quick: opt.quick,
    ...(opt.only ? { only: opt.only.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(epochs === undefined ? {} : { epochs }),
    ...(opt.backend ? { backend: opt.backend } : {}),
    ...(threads === undefined ? {} : { threads }),
  },
  io,
);
process.stdout.write(`wrote ${opt.out}/ablation.json and ablation.md (${report.rows.length} variant(s))\n`);
