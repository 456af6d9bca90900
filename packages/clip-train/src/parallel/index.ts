export * from './errors.js';
export * from './pool.js';
export * from './task.js';
export * from './workers.js';
export { PHASES, type Phase, type PhaseTimes } from './timing.js';
export * from './embed-pool.js';
export type { EmbedKind } from './embed-op.js';
