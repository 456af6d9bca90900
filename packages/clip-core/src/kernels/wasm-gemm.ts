import { platform } from '#platform';
import type { GemmPool } from '../platform/types.js';
import { GEMM_MR, GEMM_WASM, GEMM_WASM_SHARED } from './gemm-wasm-bytes.js';
import { backendMemory, instantiateOnBackendMemory, type WasmMemoryHost } from './wasm-module.js';

/**
 * A batched f32 GEMM (WebAssembly SIMD, 4×8 register tiles; text and generator in scripts/gemm-wasm.mjs) that
 * runs on tfjs-backend-wasm's own memory: instantiated against the backend's Memory object, it reads the
 * operands and writes the product where tfjs keeps them, with no copies. Transposed operands and a broadcast
 * batch are just strides, so attention's products need neither transposes nor per-entry XNNPACK operators
 * (XNNPACK creates and packs one operator per right-hand matrix, ~0.1 ms each against ~0.2 ms of work per
 * [197,64]·[64,197] entry). On the threaded build under Node it splits a product's batch over a pool of
 * worker threads of its own (platform/gemm-pool.ts): XNNPACK's pthreadpool has no entry point we can reach.
 * Browsers keep it on the calling thread (a page's main thread may not block waiting for workers).
 */

/** The parts of the backend's Emscripten module this needs. */
export interface GemmHost extends WasmMemoryHost {
  _malloc?(bytes: number): number;
  _free?(ptr: number): void;
  /** The bridge tfjs installs; its thread count is XNNPACK's pool size on the threaded build. */
  tfjs?: { getThreadsCount?(): number };
}

/** Strides are in floats; a batch stride of 0 reuses one matrix for every entry. */
export interface GemmCall {
  a: number;
  b: number;
  c: number;
  batch: number;
  m: number;
  k: number;
  n: number;
  aBatchStride: number;
  bBatchStride: number;
  aRowStride: number;
  aColStride: number;
  bRowStride: number;
  bColStride: number;
}

type GemmExport = (...args: number[]) => void;

interface Instance {
  gemm: GemmExport;
  /** The compiled module, for pool workers to instantiate against the same memory; null if not shared. */
  sharedModule: object | null;
  /** XNNPACK's thread count on this module (1 on the single-threaded build). */
  threads: number;
  malloc(bytes: number): number;
  free(ptr: number): void;
  /** Scratch blocks kept between calls (packed operand panels): [0] the calling thread's, [i] worker i's. */
  scratch: Array<{ ptr: number; bytes: number }>;
  /** undefined: not started yet; null: none here (or it failed, and products stay on the calling thread). */
  pool: GemmPool | null | undefined;
}

const instances = new WeakMap<GemmHost, Instance | null>();
/** The one pool alive: tfjs runs one wasm backend at a time, so a pool for another module is stale. */
let current: Instance | undefined;

/**
 * Products below this many FLOPs stay on the calling thread: handing a share to a worker and waking it costs
 * ~40–50 µs (measured, loaded 2-core machine), the work of ~1.5 MFLOP at 30 GFLOP/s, so splitting smaller
 * products gains nothing. A training step's batched products are all ≥ 19 MFLOP.
 */
const MIN_POOL_FLOP = 4e6;

export type GemmThreading = 'pool' | 'calling-thread' | 'pool-always';
let threading: GemmThreading = 'pool';
/**
 * Tests and the bench: 'calling-thread' keeps every batched product on the calling thread; 'pool-always'
 * pools small products too (so tests reach the pool with small shapes); 'pool' is the default.
 */
export function setGemmThreading(mode: GemmThreading): void {
  threading = mode;
}

/**
 * Batched products run so far: handed to the pool, run on the calling thread alone, and the batch entries the
 * pool's workers computed (the calling thread claims entries too; a worker that wakes late may get none).
 */
export const gemmStats = { pooled: 0, callingThread: 0, workerEntries: 0 };

/**
 * Stop the pool's workers, if any (they never keep the process alive; this is for a clean shutdown). A later
 * batched product starts a new pool, also after one failed.
 */
export async function closeGemmPool(): Promise<void> {
  const pool = current?.pool;
  if (current) current.pool = undefined;
  current = undefined;
  await pool?.close();
}

function instantiate(host: GemmHost): Instance | null {
  const { _malloc: malloc, _free: free } = host;
  if (typeof malloc !== 'function' || typeof free !== 'function') return null;
  const inst = instantiateOnBackendMemory(host, GEMM_WASM, GEMM_WASM_SHARED);
  if (!inst) return null;
  const gemm = inst.exports.gemm as GemmExport;
  const threads = inst.shared ? Math.max(1, host.tfjs?.getThreadsCount?.() ?? 1) : 1;
  return { gemm, sharedModule: inst.shared ? inst.module : null, threads, malloc: malloc.bind(host), free: free.bind(host), scratch: [], pool: undefined };
}

/** A 16-byte aligned scratch block of at least `bytes` for share `i`, grown (re-allocated) when too small. */
function scratchFor(it: Instance, i: number, bytes: number): number {
  let block = it.scratch[i];
  if (!block || block.bytes < bytes) {
    if (block?.ptr) it.free(block.ptr);
    const ptr = it.malloc(bytes);
    if (!ptr) throw new Error(`wasm GEMM: could not allocate ${bytes} bytes of scratch`);
    block = { ptr, bytes };
    it.scratch[i] = block;
  }
  return Math.ceil(block.ptr / 16) * 16; // not `& ~15`: offsets may pass 2³¹
}

/**
 * The pool for `it`, started on first use (threads − 1 workers; the calling thread takes a share too), or
 * null where there is none: one thread, unshared memory, no pool on this platform, or it failed to start.
 */
function poolFor(it: Instance, memory: object): GemmPool | null {
  if (it.pool !== undefined) return it.pool;
  // A pool for another module belongs to a disposed backend: its workers would keep that heap alive.
  if (current && current !== it) void closeGemmPool();
  it.pool = null;
  if (it.threads < 2 || !it.sharedModule || !platform.startGemmPool) return null;
  current = it;
  try {
    it.pool = platform.startGemmPool({ memory, module: it.sharedModule, workers: it.threads - 1 });
  } catch (err) {
    console.warn(`clip-ts: ${(err as Error).message}.`);
  }
  return it.pool;
}

/** The `gemm` export's arguments for entries [e0, e1) of `call`. */
function share(call: GemmCall, e0: number, e1: number, scratch: number): number[] {
  const { m, k, n } = call;
  return [
    call.a + 4 * e0 * call.aBatchStride, call.b + 4 * e0 * call.bBatchStride, call.c + 4 * e0 * m * n, scratch,
    e1 - e0, m, k, n,
    call.aBatchStride, call.bBatchStride, call.aRowStride, call.aColStride, call.bRowStride, call.bColStride,
  ];
}

/**
 * The GEMM bound to `host`'s memory, or null when it cannot run there. Instantiated once per module. On the
 * threaded build under Node, a product's batch entries are shared out over a pool of threads that claim
 * chunks of them (every entry computed by the same code in the same order, so results do not depend on who
 * computed it).
 * Throws GemmWorkerError if a pool thread fails; the pool is gone then and later calls use the calling thread.
 */
export function gemmFor(host: GemmHost): ((call: GemmCall) => void) | null {
  let inst = instances.get(host);
  if (inst === undefined) {
    inst = instantiate(host);
    instances.set(host, inst);
  }
  if (!inst) return null;
  const it = inst;
  return (call: GemmCall) => {
    const { m, k, n, batch } = call;
    const floats = Math.ceil(m / GEMM_MR) * GEMM_MR * k + Math.ceil(n / 8) * 8 * k + GEMM_MR * 8;
    const bytes = floats * 4 + 16;
    const worthIt = threading === 'pool-always' || (threading === 'pool' && 2 * batch * m * k * n >= MIN_POOL_FLOP);
    const pool = worthIt && batch > 1 ? poolFor(it, backendMemory(host) as object) : null;
    const threads = pool ? pool.workers + 1 : 1;
    // Every block is allocated before any thread starts: malloc may grow (move nothing, but re-map) the heap.
    const scratch = Array.from({ length: threads }, (_, i) => scratchFor(it, i, bytes));
    const own = (e0: number, e1: number) => it.gemm(...share(call, e0, e1, scratch[0] as number));
    if (!pool) {
      own(0, batch);
      gemmStats.callingThread++;
      return;
    }
    // ~8 claims per thread: a thread that starts late or is descheduled holds up the others by one chunk at
    // most. A broadcast operand is packed once per claim instead of once per product: k·n (or m·k) copies
    // against 2·m·k·n FLOPs per entry, small.
    const chunk = Math.max(1, Math.floor(batch / (8 * threads)));
    let workerEntries: number;
    try {
      ({ workerEntries } = pool.run({ args: share(call, 0, batch, 0), scratch: scratch.slice(1), chunk }, own));
    } catch (err) {
      if (it.pool === pool) it.pool = null;
      throw err;
    }
    gemmStats.workerEntries += workerEntries;
    gemmStats.pooled++;
  };
}
