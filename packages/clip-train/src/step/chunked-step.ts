import * as tf from '@tensorflow/tfjs-core';
import { addInPlace, type Rng } from '@clip-ts/core';

/**
 * An exact micro-batched step for a contrastive two-tower model (GradCache, Gao et al. 2021). A contrastive
 * loss couples every row of the batch with every other, so averaging the losses of smaller batches (the
 * trainer's `accumulation`) optimises a different objective. Instead:
 *
 *   (i)   embedChunk: each tower runs on each chunk of rows with no gradient tape, keeping only its outputs;
 *   (ii)  lossGrads: the full-batch loss on the concatenated outputs, with its gradients w.r.t. those
 *         outputs and the loss side's own variables (heads, logit scale/bias);
 *   (iii) backpropChunk: each chunk's tower forward is recomputed under a tape and the output gradients
 *         pushed through it (∂/∂θ Σ out·dOut), parameter gradients summed over chunks.
 *
 * The result equals the un-chunked loss and gradients up to float summation order. Peak activation memory is
 * one chunk of one tower. Dropout masks stay consistent between (i) and (iii) by snapshotting the towers'
 * generators before each chunk's forward and restoring them for its recomputation.
 *
 * The phases are exported on their own so a data-parallel worker can run (i) and (iii) for its chunk only,
 * exchanging outputs and output gradients with the others; `chunkedLossAndGrads` runs them all in-process.
 */

/** One tower as the chunked step drives it. */
export interface ChunkTower<B> {
  /**
   * [end - start, D] outputs for rows [start, end) of `batch`, training behaviour on (dropout). A NEW tensor
   * the caller owns. Called once without a tape (pass i) and, when the tower trains, once more inside
   * tf.variableGrads (pass iii); both calls must compute the same function of the same generator states.
   */
  forward(batch: B, start: number, end: number): tf.Tensor2D;
  /** Every weight the forward reads; gradients go to those among the step's variables. */
  variables(): readonly tf.Variable[];
}

/** What the chunked step needs from a model and its batches. */
export interface ChunkedStepSpec<B> {
  /** Number of rows (pairs) in the batch. */
  rows(batch: B): number;
  /** The towers, in the order their outputs are handed to `loss`. */
  towers: readonly ChunkTower<B>[];
  /**
   * The full-batch loss from every tower's [rows, D] outputs (tower order): projection heads, normalisation,
   * scale, bias and targets live here. A NEW scalar; called inside tf.variableGrads, so it must not dispose
   * its inputs.
   */
  loss(outputs: readonly tf.Tensor2D[], batch: B): tf.Scalar;
  /** The generators the towers' forwards draw from (dropout); their states are snapshotted per chunk. */
  rngs(): readonly Rng[];
}

/** Pass (i) for one chunk: each tower's outputs and the generator states its forward started from. */
export interface ChunkEmbedding {
  start: number;
  end: number;
  /** One [end - start, D] tensor per tower; owned by the caller (dispose when done). */
  outputs: tf.Tensor2D[];
  /** Per tower, the states of `spec.rngs()` just before its forward. */
  rngStates: number[][];
}

/** Loss and gradients as tf.variableGrads returns them: the caller owns `value` and every gradient. */
export interface LossAndGrads {
  value: tf.Scalar;
  /** Gradients by variable name; variables the loss does not reach are absent. */
  grads: tf.NamedTensorMap;
}

/** [start, end) row ranges of `size` rows each (the last may be shorter). */
export function chunkBounds(rows: number, size: number): Array<[number, number]> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be an integer ≥ 1, got ${size}`);
  const out: Array<[number, number]> = [];
  for (let s = 0; s < rows; s += size) out.push([s, Math.min(rows, s + size)]);
  return out;
}

function snapshot(rngs: readonly Rng[]): number[] {
  return rngs.map((r) => r.state);
}

function restore(rngs: readonly Rng[], states: readonly number[]): void {
  rngs.forEach((r, i) => {
    r.state = states[i] as number;
  });
}

/** Pass (i): every tower's outputs for rows [start, end), no tape kept. The caller owns the outputs. */
export function embedChunk<B>(spec: ChunkedStepSpec<B>, batch: B, start: number, end: number): ChunkEmbedding {
  const rngs = spec.rngs();
  const rngStates: number[][] = [];
  const outputs: tf.Tensor2D[] = [];
  for (const tower of spec.towers) {
    rngStates.push(snapshot(rngs));
    outputs.push(tf.tidy(() => tower.forward(batch, start, end)));
  }
  return { start, end, outputs, rngStates };
}

/**
 * Pass (ii): the loss on full-batch tower outputs (`outputs[t]` is tower t's [rows, D]), its gradients
 * w.r.t. `lossVariables` (by name) and w.r.t. the outputs of the towers listed in `needOutputGrads`
 * (undefined elsewhere). Borrows `outputs`; the caller owns everything returned.
 */
export function lossGrads<B>(
  spec: ChunkedStepSpec<B>,
  batch: B,
  outputs: readonly tf.Tensor2D[],
  lossVariables: readonly tf.Variable[],
  needOutputGrads: readonly boolean[],
): LossAndGrads & { outputGrads: Array<tf.Tensor2D | undefined> } {
  // tf.variableGrads differentiates only w.r.t. variables: the outputs that need a gradient become
  // short-lived variables (a copy of [rows, D] each, small next to the towers).
  const asVars: Array<tf.Variable | undefined> = outputs.map((o, t) => (needOutputGrads[t] ? tf.variable(o, true) : undefined));
  try {
    const inputs = outputs.map((o, t) => asVars[t] ?? o) as tf.Tensor2D[];
    const wrt = [...lossVariables, ...asVars.filter((v): v is tf.Variable => v !== undefined)];
    const { value, grads } = tf.variableGrads(() => spec.loss(inputs, batch), wrt);
    const outputGrads = asVars.map((v) => {
      if (!v) return undefined;
      const g = grads[v.name] as tf.Tensor2D | undefined;
      delete grads[v.name];
      // An output the loss ignores still gets a (zero) gradient, so pass (iii) has something to push back.
      return g ?? (tf.zerosLike(v) as tf.Tensor2D);
    });
    return { value, grads, outputGrads };
  } finally {
    for (const v of asVars) v?.dispose();
  }
}

/**
 * Pass (iii) for one chunk: recompute each tower listed in `outputGrads` (defined entries) from the
 * generator states of pass (i) and return Σ_towers ∂(Σ out·dOut)/∂θ for `variables` (by name), which
 * the caller owns. `outputGrads[t]` is tower t's [end - start, D] gradient (borrowed).
 */
export function backpropChunk<B>(
  spec: ChunkedStepSpec<B>,
  batch: B,
  chunk: Pick<ChunkEmbedding, 'start' | 'end' | 'rngStates'>,
  outputGrads: ReadonlyArray<tf.Tensor2D | undefined>,
  variables: readonly tf.Variable[],
): tf.NamedTensorMap {
  const rngs = spec.rngs();
  let sums: tf.NamedTensorMap = {};
  spec.towers.forEach((tower, t) => {
    const dOut = outputGrads[t];
    if (!dOut) return;
    const own = new Set(tower.variables());
    const wrt = variables.filter((v) => own.has(v));
    if (wrt.length === 0) return;
    restore(rngs, chunk.rngStates[t] as number[]);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tower.forward(batch, chunk.start, chunk.end), dOut)) as tf.Scalar, wrt);
    value.dispose();
    sums = addInto(sums, grads);
  });
  return sums;
}

/**
 * sums + more, by name; consumes both maps (their tensors are moved or disposed). Adds in place where the
 * backend allows (addInPlace in @clip-ts/core, bit-identical to tf.add): tf.add would hold a third
 * weight-sized tensor while the sum and the chunk's gradient both exist (measured with tf.profile: 1× the
 * variable's bytes per add, 94 MB for DistilBERT's embedding).
 */
export function addInto(sums: tf.NamedTensorMap, more: tf.NamedTensorMap): tf.NamedTensorMap {
  for (const [name, g] of Object.entries(more)) {
    const prev = sums[name];
    if (prev) {
      if (addInPlace(prev, g)) {
        g.dispose();
        continue;
      }
      sums[name] = tf.add(prev, g);
      prev.dispose();
      g.dispose();
    } else {
      sums[name] = g;
    }
  }
  return sums;
}

/**
 * The whole chunked step in this process: chunks of `microBatch` rows, passes (i)–(iii). Returns the same
 * loss and gradients (w.r.t. `variables`, by name) as tf.variableGrads(() => loss of the whole batch),
 * owned by the caller. The generators end where pass (i) left them. Call it outside any gradient tape.
 */
export function chunkedLossAndGrads<B>(spec: ChunkedStepSpec<B>, batch: B, variables: readonly tf.Variable[], microBatch: number): LossAndGrads {
  const rows = spec.rows(batch);
  const towerVars = spec.towers.map((t) => new Set(t.variables()));
  const trains = towerVars.map((own) => variables.some((v) => own.has(v)));
  const lossVariables = variables.filter((v) => !towerVars.some((own) => own.has(v)));
  const chunks: ChunkEmbedding[] = [];
  let full: tf.Tensor2D[] = [];
  let outputGrads: Array<tf.Tensor2D | undefined> = [];
  let grads: tf.NamedTensorMap = {};
  let value: tf.Scalar | undefined;
  const rngs = spec.rngs();
  try {
    for (const [s, e] of chunkBounds(rows, microBatch)) chunks.push(embedChunk(spec, batch, s, e));
    const after = snapshot(rngs);
    full = spec.towers.map((_, t) => (chunks.length === 1 ? tf.clone(chunks[0]?.outputs[t] as tf.Tensor2D) : tf.concat(chunks.map((c) => c.outputs[t] as tf.Tensor2D), 0)));
    for (const c of chunks) tf.dispose(c.outputs);
    const head = lossGrads(spec, batch, full, lossVariables, trains);
    value = head.value;
    grads = head.grads;
    outputGrads = head.outputGrads;
    tf.dispose(full);
    full = [];
    for (const c of chunks) {
      const slices = outputGrads.map((g) => (g ? (tf.slice(g, [c.start, 0], [c.end - c.start, -1]) as tf.Tensor2D) : undefined));
      try {
        grads = addInto(grads, backpropChunk(spec, batch, c, slices, variables));
      } finally {
        tf.dispose(slices.filter((x): x is tf.Tensor2D => x !== undefined));
      }
    }
    restore(rngs, after);
    const out = { value, grads };
    value = undefined;
    grads = {};
    return out;
  } finally {
    for (const c of chunks) tf.dispose(c.outputs.filter((o) => !o.isDisposed));
    tf.dispose(full);
    tf.dispose(outputGrads.filter((x): x is tf.Tensor2D => x !== undefined));
    value?.dispose();
    tf.dispose(Object.values(grads));
  }
}
