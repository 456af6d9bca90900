/**
 * The record GEMM pool workers share with the calling thread (an Int32Array over a SharedArrayBuffer) and the
 * workers' script. Node only; reached through #platform.
 *
 * Layout: a header (the job: next unclaimed entry, entries per claim, `gemm`'s 14 arguments for the whole
 * batch), then SLOT ints per worker (its state, a test fault, its scratch block, entries it computed).
 */
export const HEADER = { next: 0, chunk: 1, args: 2, size: 16 } as const;
export const SLOT = 4;
export const FIELD = { state: 0, fault: 1, scratch: 2, entries: 3 } as const;

/**
 * Worker states. The calling thread writes RUN and QUIT, and takes back a RUN nobody picked up (DONE); the
 * worker turns RUN into BUSY when it starts and writes the rest.
 */
export const STATE = { starting: 0, ready: 1, run: 2, busy: 3, done: 4, failed: 5, dead: 6, quit: 7 } as const;

/** Faults a test can make a worker commit on its next job (the only way to reach the error paths for real). */
export const FAULT = { none: 0, throw: 1, exit: 2, hang: 3 } as const;

/**
 * The worker, an ES module to run from a data: URL: a file next to this one would not exist when the package
 * runs from TypeScript sources (tests) or from a bundle, and `eval: true` would make it CommonJS or ESM
 * depending on the parent's --input-type. It instantiates the GEMM module against the backend's shared memory,
 * then parks in Atomics.wait until its slot says RUN or QUIT; on RUN it claims chunks of entries until none
 * are left. A throw is caught and reported (FAILED + the message on `port`); `process.exit` reaches the exit
 * handler, which marks the slot DEAD, so the calling thread learns of it without waiting out its timeout.
 */
const WORKER_SOURCE = `
import { workerData } from 'node:worker_threads';
const { memory, module, control, slot, port } = workerData;
const ctl = new Int32Array(control);
const base = ${HEADER.size} + slot * ${SLOT};
const at = base + ${FIELD.state};
const S = ${JSON.stringify(STATE)};
const F = ${JSON.stringify(FAULT)};
const set = (state) => { Atomics.store(ctl, at, state); Atomics.notify(ctl, at); };
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
const A = ${HEADER.args};
// Entries [e0, e1) of the job: the pointers advance by whole entries (kernels/wasm-gemm.ts, share(), does the
// same for the calling thread). Pointers are read unsigned: the heap may pass 2³¹.
const entries = (e0, e1, scratch) => {
  const p = (i) => ctl[A + i] >>> 0;
  const [m, n] = [ctl[A + 5], ctl[A + 7]];
  gemm(p(0) + 4 * e0 * ctl[A + 8], p(1) + 4 * e0 * ctl[A + 9], p(2) + 4 * e0 * m * n, scratch,
    e1 - e0, m, ctl[A + 6], n, ctl[A + 8], ctl[A + 9], ctl[A + 10], ctl[A + 11], ctl[A + 12], ctl[A + 13]);
};
while (gemm) {
  let s;
  while ((s = Atomics.load(ctl, at)) !== S.run && s !== S.quit) Atomics.wait(ctl, at, s);
  if (s === S.quit) break;
  // The calling thread takes back a job nobody has started once it has claimed every entry itself.
  if (Atomics.compareExchange(ctl, at, S.run, S.busy) !== S.run) continue;
  try {
    const fault = Atomics.exchange(ctl, base + ${FIELD.fault}, F.none);
    if (fault === F.throw) throw new Error('fault injected by a test');
    if (fault === F.exit) process.exit(7);
    if (fault === F.hang) for (;;);
    const [batch, chunk, scratch] = [ctl[A + 4], ctl[${HEADER.chunk}], ctl[base + ${FIELD.scratch}] >>> 0];
    let done = 0;
    for (let e; (e = Atomics.add(ctl, ${HEADER.next}, chunk)) < batch; done += Math.min(e + chunk, batch) - e) {
      entries(e, Math.min(e + chunk, batch), scratch);
    }
    ctl[base + ${FIELD.entries}] = done;
    set(S.done);
  } catch (err) {
    report(err);
    set(S.failed);
  }
}
`;

export const WORKER_URL = new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE)}`);
