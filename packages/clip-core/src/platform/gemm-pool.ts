import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { GemmWorkerError } from '../errors.js';
import { FAULT, FIELD, HEADER, SLOT, STATE, WORKER_URL } from './gemm-worker.js';
import type { GemmJob, GemmPool, GemmPoolOptions } from './types.js';

/**
 * worker_threads that run shares of a batched GEMM on the wasm backend's shared memory (Node only; reached
 * through #platform). The tfjs binary exports no entry to its own pthreadpool, so we keep threads of our own;
 * tfjs' threads are idle while our kernel runs, so threads − 1 of them do not oversubscribe the cores.
 *
 * Kernels are synchronous, so the calling thread hands out jobs through a shared job record and blocks in
 * Atomics.wait (allowed on Node's main thread) — no message round trip per product. Worker events cannot be
 * delivered while it blocks, so a worker reports its own death (FAILED from a catch, DEAD from its exit
 * handler), and every wait is bounded: a worker that neither finishes nor reports is declared hung.
 */

/** How long the workers may take to start (each boots a Node environment, ~50–100 ms). */
const START_TIMEOUT_MS = 10_000;
/**
 * The least a share may take before its worker counts as hung; beyond it, a share may take this many times
 * what the calling thread's own share took (a loaded machine deschedules threads unevenly).
 */
let minShareTimeoutMs = 10_000;
const SHARE_TIMEOUT_FACTOR = 20;

/** Tests shorten the hang timeout (returns the previous value). */
export function setGemmShareTimeout(ms: number): number {
  const prev = minShareTimeoutMs;
  minShareTimeoutMs = ms;
  return prev;
}

const livePools = new Set<NodeGemmPool>();

/** Tests: make worker `index` of every live pool commit `fault` on its next job. */
export function injectGemmWorkerFault(fault: Exclude<keyof typeof FAULT, 'none'>, index = 0): void {
  for (const pool of livePools) pool.inject(index, FAULT[fault]);
}

/** Tests and shutdown: the live pools' workers (each pool's count). */
export function liveGemmPools(): number[] {
  return [...livePools].map((p) => p.workers);
}

class NodeGemmPool implements GemmPool {
  readonly workers: number;
  private readonly ctl: Int32Array;
  private readonly threads: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  /** Set from worker events between products (a worker terminated from outside cannot mark its slot). */
  private exited: string | undefined;
  private closing: Promise<void> | undefined;

  constructor({ memory, module, workers }: GemmPoolOptions) {
    this.workers = workers;
    this.ctl = new Int32Array(new SharedArrayBuffer(4 * (HEADER.size + SLOT * workers)));
    livePools.add(this);
    try {
      for (let slot = 0; slot < workers; slot++) {
        const { port1, port2 } = new MessageChannel();
        const worker = new Worker(WORKER_URL, {
          name: `clip-ts gemm ${slot + 1}`,
          workerData: { memory, module, control: this.ctl.buffer, slot, port: port2 },
          transferList: [port2],
        });
        worker.unref();
        port1.unref();
        worker.on('error', (err) => (this.exited ??= `worker ${slot + 1} threw: ${err.message}`));
        worker.on('exit', (code) => (this.exited ??= `worker ${slot + 1} exited (code ${code})`));
        this.threads.push(worker);
        this.ports.push(port1);
      }
      const deadline = performance.now() + START_TIMEOUT_MS;
      for (let slot = 0; slot < workers; slot++) {
        const state = this.waitWhile(slot, STATE.starting, deadline);
        if (state !== STATE.ready) throw this.fail(slot, state, `did not start within ${START_TIMEOUT_MS} ms`, 'batched products run on the calling thread');
      }
    } catch (err) {
      void this.close();
      throw err instanceof GemmWorkerError ? err : new GemmWorkerError(`GEMM pool: could not start workers: ${(err as Error).message}; batched products run on the calling thread`, { cause: err });
    }
  }

  inject(slot: number, fault: number): void {
    if (slot < this.workers) Atomics.store(this.ctl, this.at(slot, FIELD.fault), fault);
  }

  /** Index of `field` of worker `slot` in the record. */
  private at(slot: number, field: number): number {
    return HEADER.size + slot * SLOT + field;
  }

  run(job: GemmJob, own: (e0: number, e1: number) => void): { workerEntries: number } {
    if (this.closing) throw new GemmWorkerError('GEMM pool: used after it was closed');
    if (this.exited !== undefined) {
      const why = this.exited;
      void this.close();
      throw new GemmWorkerError(`GEMM pool: ${why}; batched products run on the calling thread from now on`);
    }
    const { ctl } = this;
    const batch = job.args[4] as number;
    const { chunk } = job;
    ctl.set(job.args, HEADER.args);
    Atomics.store(ctl, HEADER.chunk, chunk);
    Atomics.store(ctl, HEADER.next, 0);
    for (let slot = 0; slot < this.workers; slot++) {
      ctl[this.at(slot, FIELD.scratch)] = job.scratch[slot] as number;
      ctl[this.at(slot, FIELD.entries)] = 0;
      Atomics.store(ctl, this.at(slot, FIELD.state), STATE.run);
      Atomics.notify(ctl, this.at(slot, FIELD.state));
    }
    const t0 = performance.now();
    let ownError: unknown;
    try {
      for (let e: number; (e = Atomics.add(ctl, HEADER.next, chunk)) < batch; ) own(e, Math.min(e + chunk, batch));
    } catch (err) {
      ownError = err;
      Atomics.store(ctl, HEADER.next, batch); // nothing more for the workers either
    }
    const ownMs = performance.now() - t0;
    // Wait for every worker that started, even when our own part failed: a worker must not still write memory
    // tfjs may reuse. One that has not started yet never will (we take its job back), unless a test fault is
    // pending on it: then it must start, to commit it.
    const deadline = performance.now() + Math.max(minShareTimeoutMs, SHARE_TIMEOUT_FACTOR * ownMs);
    let workerEntries = 0;
    for (let slot = 0; slot < this.workers; slot++) {
      const state = this.at(slot, FIELD.state);
      const faultPending = Atomics.load(ctl, this.at(slot, FIELD.fault)) !== FAULT.none;
      if (!faultPending && Atomics.compareExchange(ctl, state, STATE.run, STATE.done) === STATE.run) continue;
      this.waitWhile(slot, STATE.run, deadline);
      const end = this.waitWhile(slot, STATE.busy, deadline);
      if (end !== STATE.done) {
        const err = this.fail(slot, end, `did not finish its share within ${Math.round(deadline - t0)} ms`);
        void this.close();
        throw err;
      }
      workerEntries += ctl[this.at(slot, FIELD.entries)] as number;
    }
    if (ownError !== undefined) throw ownError;
    return { workerEntries };
  }

  /** Block while slot's state is `state`, until `deadline`; returns the state then. */
  private waitWhile(slot: number, state: number, deadline: number): number {
    const at = this.at(slot, FIELD.state);
    let now: number;
    while (Atomics.load(this.ctl, at) === state && (now = performance.now()) < deadline) {
      Atomics.wait(this.ctl, at, state, deadline - now);
    }
    return Atomics.load(this.ctl, at);
  }

  private fail(slot: number, state: number, hung: string, then = 'batched products run on the calling thread from now on'): GemmWorkerError {
    const who = `GEMM pool worker ${slot + 1} of ${this.workers}`;
    if (state === STATE.failed) {
      const message = receiveMessageOnPort(this.ports[slot] as MessagePort)?.message as string | undefined;
      return new GemmWorkerError(`${who} failed: ${message ?? 'no message'}; ${then}`);
    }
    if (state === STATE.dead) return new GemmWorkerError(`${who} exited; ${then}`);
    return new GemmWorkerError(`${who} ${hung} (hung?); ${then}`);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      livePools.delete(this);
      for (let slot = 0; slot < this.workers; slot++) {
        Atomics.store(this.ctl, this.at(slot, FIELD.state), STATE.quit);
        Atomics.notify(this.ctl, this.at(slot, FIELD.state));
      }
      // terminate() also stops a worker stuck in a share (a hang); one parked in Atomics.wait has left already.
      await Promise.all(this.threads.map((w) => w.terminate()));
      for (const port of this.ports) port.close();
    })();
    return this.closing;
  }
}

/** Start `workers` GEMM threads (blocks until they are ready, at most START_TIMEOUT_MS); throws GemmWorkerError. */
export function startGemmPool(options: GemmPoolOptions): GemmPool {
  return new NodeGemmPool(options);
}
