import type { EmbedKind, EmbedRows } from './embed-op.js';
import type { VariableLayout } from './layout.js';

/** Sent once to each forward-only replica (EmbedPool). */
export interface EmbedInit {
  replica: number;
  /** tfjs backend of the main thread (every replica runs the same one). */
  backend: string;
  /** CLIPModel.getConfig() of the main model; weights come from `weights`. */
  modelConfig: unknown;
  weightsLayout: VariableLayout;
  weights: Float32Array;
  /** Test hook: this replica fails at this request ('throw': an exception; 'exit': the thread ends). */
  fault?: { request: number; kind: 'throw' | 'exit' };
}

/** One request's rows for one replica. Buffers are transferred, not copied. */
export interface EmbedRequest {
  type: 'embed';
  id: number;
  kind: EmbedKind;
  rows: EmbedRows;
}

export type EmbedReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; data: Float32Array }
  | { type: 'error'; id: number; message: string };
