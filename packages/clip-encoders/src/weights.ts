import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ValueError, type NamedVariable, type TensorData } from '@clip-ts/core';

/**
 * The weights of one tower, named as in the HF checkpoint, with the layout conversions between
 * PyTorch (what stateDict/loadStateDict speak) and tfjs (what the forward pass uses):
 * - `plain`: same shape in both (LayerNorm, biases, embeddings);
 * - `linear`: torch nn.Linear [out, in] ↔ tfjs dense kernel [in, out];
 * - `patch`: torch Conv2d [out, c, kh, kw] ↔ a dense kernel [c·kh·kw, out] applied to flattened patches;
 * - `conv`: torch Conv2d [out, c, kh, kw] ↔ a tfjs conv2d filter [kh, kw, c, out].
 *
 * Buffers (BatchNorm running statistics, `num_batches_tracked`) live here too, so checkpoints save and
 * load them with the weights, but they are never trainable: the forward pass updates them, not the optimizer.
 */
export type WeightLayout = 'plain' | 'linear' | 'patch' | 'conv';

/** Where a weight sits, for partial freezing: embeddings, block i, or after the blocks (final norm, pooler). */
export type WeightGroup = 'embeddings' | 'head' | number;

interface Entry {
  name: string;
  variable: tf.Variable;
  layout: WeightLayout;
  /** Shape in the HF checkpoint. */
  hfShape: number[];
  noDecay: boolean;
  group: WeightGroup;
  buffer: boolean;
}

let instances = 0;

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** HF-layout values → tensor in tfjs layout (caller owns). */
function toTfjs(layout: WeightLayout, hfShape: number[], data: Float32Array | Int32Array): tf.Tensor {
  return tf.tidy(() => {
    if (layout === 'plain') return tf.tensor(data, hfShape, data instanceof Int32Array ? 'int32' : 'float32');
    if (layout === 'conv') return tf.transpose(tf.tensor4d(data, hfShape as [number, number, number, number], 'float32'), [2, 3, 1, 0]);
    const out = hfShape[0] as number;
    const flat = tf.tensor2d(data, [out, data.length / out], 'float32');
    return tf.transpose(flat);
  });
}

export class TowerWeights {
  private readonly entries: Entry[] = [];
  private readonly byName = new Map<string, Entry>();
  private readonly scope: string;

  /** `kind` only prefixes the (globally unique) tfjs variable names. */
  constructor(kind: string) {
    this.scope = `${kind}_${++instances}`;
  }

  /**
   * Create a variable from values in HF layout and return it (the store owns it). `noDecay` marks
   * LayerNorm weights, biases and embedding norms; `buffer` marks state that is saved but never trained
   * (an Int32Array init makes an int32 buffer, e.g. num_batches_tracked).
   */
  add(
    name: string,
    hfShape: number[],
    layout: WeightLayout,
    init: Float32Array | Int32Array,
    opts: { noDecay: boolean; group: WeightGroup; buffer?: boolean },
  ): tf.Variable {
    if (this.byName.has(name)) throw new Error(`duplicate weight ${name}`);
    const buffer = opts.buffer ?? false;
    const value = toTfjs(layout, hfShape, init);
    const variable = tf.variable(value, !buffer, `${this.scope}/${name}`, value.dtype);
    value.dispose();
    const entry: Entry = { name, variable, layout, hfShape, noDecay: opts.noDecay || buffer, group: opts.group, buffer };
    this.entries.push(entry);
    this.byName.set(name, entry);
    return variable;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  named(): NamedVariable[] {
    return this.entries.map((e) => (e.buffer ? { name: e.name, variable: e.variable, noDecay: true, buffer: true } : { name: e.name, variable: e.variable, noDecay: e.noDecay }));
  }

  /** Trainable variables, less those `skip` names (weights the forward pass does not use). */
  trainable(skip: (name: string) => boolean = () => false): tf.Variable[] {
    return this.entries.filter((e) => !e.buffer && e.variable.trainable && !skip(e.name)).map((e) => e.variable);
  }

  setTrainable(trainable: boolean): void {
    for (const e of this.params()) e.variable.trainable = trainable;
  }

  /** The entries that can train (everything but buffers). */
  private params(): Entry[] {
    return this.entries.filter((e) => !e.buffer);
  }

  /**
   * Train only the last `n` of `numBlocks` blocks and what follows them (final LayerNorm, pooler);
   * embeddings and earlier blocks are frozen. n = 0 leaves only the head trainable.
   */
  freezeAllButLast(n: number, numBlocks: number): void {
    if (!Number.isInteger(n) || n < 0) throw new ValueError(`freezeAllButLast: n must be a non-negative integer, got ${n}`);
    const first = numBlocks - n;
    for (const e of this.params()) {
      e.variable.trainable = e.group === 'head' || (typeof e.group === 'number' && e.group >= first);
    }
  }

  get frozen(): boolean {
    return this.params().every((e) => !e.variable.trainable);
  }

  /** Weights in HF/PyTorch layout; the caller owns the tensors. */
  stateDict(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const e of this.entries) {
      out.set(
        e.name,
        tf.tidy(() => {
          if (e.layout === 'plain') return tf.clone(e.variable);
          if (e.layout === 'conv') return tf.transpose(e.variable, [3, 2, 0, 1]);
          return tf.reshape(tf.transpose(e.variable), e.hfShape);
        }),
      );
    }
    return out;
  }

  /**
   * Assign every weight from HF-layout data. Keys the store does not know are ignored. All missing
   * keys (less `optional` ones, which keep their current values) and all shape mismatches are reported
   * in one CheckpointError naming `source`; nothing is assigned unless everything checks out.
   */
  load(weights: ReadonlyMap<string, TensorData>, source: string, optional: (name: string) => boolean = () => false): void {
    const missing: string[] = [];
    const problems: string[] = [];
    for (const e of this.entries) {
      const w = weights.get(e.name);
      if (!w) {
        if (!optional(e.name)) missing.push(e.name);
        continue;
      }
      const want = e.variable.dtype === 'int32' ? 'int32' : 'float32';
      if (w.dtype !== want) problems.push(`${e.name}: expected ${want === 'int32' ? 'an integer' : 'a float'} tensor, found ${w.storedDtype}`);
      else if (!sameShape(w.shape, e.hfShape)) {
        problems.push(`${e.name}: checkpoint has shape [${w.shape.join(', ')}], the model expects [${e.hfShape.join(', ')}]`);
      }
    }
    if (missing.length > 0) {
      problems.unshift(`missing ${missing.length} weight(s): ${missing.join(', ')}`);
    }
    if (problems.length > 0) throw new CheckpointError(`${source}: incompatible weights:\n  ${problems.join('\n  ')}`);
    for (const e of this.entries) {
      const w = weights.get(e.name);
      if (!w) continue;
      const value = toTfjs(e.layout, e.hfShape, w.data);
      e.variable.assign(value);
      value.dispose();
    }
  }

  dispose(): void {
    for (const e of this.entries) e.variable.dispose();
    this.entries.length = 0;
    this.byName.clear();
  }
}
