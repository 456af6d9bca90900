import { performance } from 'node:perf_hooks';

/**
 * Phases of one replica's step. Wall time per phase is summed across steps into a shared Float64Array
 * (`replicas × PHASES.length`), so main can report where a slow step spent its time on every replica
 * without a message round trip (issue 12: 2 replicas cost more CPU per step than 1; this says where).
 * - weights: main writes its trainable weights to shared memory / a worker assigns them to its variables
 * - send: main slices and posts the workers' rows (main only)
 * - towers: forward pass through the towers and heads, up to publishing the shard's embeddings
 * - gather: waiting at the embedding barrier for the other replicas
 * - lossBackward: the full-batch loss and the backward pass
 * - grads: a worker writes its gradients to its slot / main waits for the workers' slots
 * - reduce: main sums the slots (main only)
 */
export const PHASES = ['weights', 'send', 'towers', 'gather', 'lossBackward', 'grads', 'reduce'] as const;
export type Phase = (typeof PHASES)[number];

/** Summed milliseconds per phase for one replica. */
export type PhaseTimes = Record<Phase, number>;

export function sharedPhaseTimes(replicas: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(Math.max(1, replicas * PHASES.length) * Float64Array.BYTES_PER_ELEMENT));
}

/** Adds the time since the previous mark to a phase of `replica`'s row. */
export class PhaseClock {
  private last = performance.now();
  constructor(
    private readonly times: Float64Array,
    private readonly replica: number,
  ) {}

  /** Restart the interval without charging it to any phase. */
  reset(): void {
    this.last = performance.now();
  }

  /** Charge the time since the previous mark (or reset) to `phase`. */
  mark(phase: Phase): void {
    const now = performance.now();
    const i = this.replica * PHASES.length + PHASES.indexOf(phase);
    this.times[i] = (this.times[i] as number) + (now - this.last);
    this.last = now;
  }
}

/** The summed phase times of every replica, replica 0 (main) first. */
export function readPhaseTimes(times: Float64Array, replicas: number): PhaseTimes[] {
  return Array.from({ length: replicas }, (_, r) => Object.fromEntries(PHASES.map((p, i) => [p, times[r * PHASES.length + i] as number])) as PhaseTimes);
}
