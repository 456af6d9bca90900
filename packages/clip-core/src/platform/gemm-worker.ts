/**
 * The job record one GEMM pool worker shares with the calling thread (an Int32Array over a SharedArrayBuffer,
 * SLOT ints per worker) and the worker's script. Node only; reached through #platform.
 */

/** Ints per worker: state, fault (tests), then the 14 `gemm` arguments. */
export const SLOT = 16;
export const FIELD = { state: 0, fault: 1, args: 2 } as const;

/** Worker states. The calling thread writes RUN and QUIT; the worker writes the rest. */
export const STATE = { starting: 0, ready: 1, run: 2, done: 3, failed: 4, dead: 5, quit: 6 } as const;

/** Faults a test can make a worker commit on its next job (the only way to reach the error paths for real). */
export const FAULT = { none: 0, throw: 1, exit: 2, hang: 3 } as const;

/**
 * The worker, an ES module to run from a data: URL: a file next to this one would not exist when the package
 * runs from TypeScript sources (tests) or from a bundle, and `eval: true` would make it CommonJS or ESM
 * depending on the parent's --input-type. It instantiates the GEMM module against the backend's shared memory,
 * then parks in Atomics.wait until its slot says RUN or QUIT. A throw is caught and reported (FAILED + the
 * message on `port`); `process.exit` reaches the exit handler, which marks the slot DEAD, so the calling
 * thread learns of it without waiting out its timeout.
 */
const WORKER_SOURCE = `
import { workerData } from 'node:worker_threads';
const { memory, module, control, slot, port } = workerData;
const ctl = new Int32Array(control);
const base = slot * ${SLOT};
const S = ${JSON.stringify(STATE)};
const F = ${JSON.stringify(FAULT)};
const set = (state) => { Atomics.store(ctl, base + ${FIELD.state}, state); Atomics.notify(ctl, base + ${FIELD.state}); };
const report = (err) => port.postMessage(String((err && err.stack) || err));
process.on('exit', () => set(S.dead));
let gemm;
try {
  gemm = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm;
  set(S.ready);
} catch (err) {
  report(err);
  set(S.failed);
}
while (gemm) {
  let s;
  while ((s = Atomics.load(ctl, base + ${FIELD.state})) !== S.run && s !== S.quit) Atomics.wait(ctl, base + ${FIELD.state}, s);
  if (s === S.quit) break;
  try {
    const fault = Atomics.exchange(ctl, base + ${FIELD.fault}, F.none);
    if (fault === F.throw) throw new Error('fault injected by a test');
    if (fault === F.exit) process.exit(7);
    if (fault === F.hang) for (;;);
    gemm(...ctl.subarray(base + ${FIELD.args}, base + ${FIELD.args + 14}));
    set(S.done);
  } catch (err) {
    report(err);
    set(S.failed);
  }
}
`;

export const WORKER_URL = new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE)}`);
