import type { SharedControl } from './barrier.js';
import type { VariableLayout } from './layout.js';

/** Sent once to each worker: how to build its replica and where the shared buffers are. */
export interface InitMessage {
  type: 'init';
  replica: number;
  replicas: number;
  /** tfjs backend of the main thread (every replica runs the same one). */
  backend: string;
  /** CLIPModel.getConfig() of the main model; weights come from `weights`. */
  modelConfig: unknown;
  frozen: { vision: boolean; text: boolean };
  control: SharedControl;
  /** Every weight (towers, heads, scale), main's values at start; trainable ones are refreshed each step. */
  weightsLayout: VariableLayout;
  weights: Float32Array;
  /** Trainable weights: one gradient slot per replica, this layout each. */
  gradLayout: VariableLayout;
  grads: Float32Array[];
  /** [maxBatch, dim] gathered image / text embeddings. */
  imageEmbeds: Float32Array;
  textEmbeds: Float32Array;
  maxBatch: number;
  timeoutMs: number;
  /** Summed phase times of every replica (see timing.ts); this worker adds to its own row. */
  phaseTimes: Float64Array;
  /** Test hook: this worker fails at this pool step ('throw': an exception; 'exit': the thread ends). */
  fault?: { step: number; kind: 'throw' | 'exit' };
}

/** One optimizer step's share for one worker. Buffers are transferred, not copied. */
export interface StepMessage {
  type: 'step';
  /** Pool step index (0, 1, ...), for the barrier targets. */
  step: number;
  batchSize: number;
  /** This replica's rows [rowStart, rowEnd) of the batch. */
  rowStart: number;
  rowEnd: number;
  pixels: Float32Array;
  pixelShape: [number, number, number, number];
  inputIds: Int32Array;
  attentionMask: Int32Array;
  seqLength: number;
  /** [B, B] positives mask of the whole batch, or undefined for the diagonal. */
  positives: Float32Array | undefined;
  /** Main's dropout generator states at the start of the step; the worker derives its own from them. */
  rngStates: number[];
}

export type WorkerReply = { type: 'ready'; rngCount: number } | { type: 'error'; message: string };
