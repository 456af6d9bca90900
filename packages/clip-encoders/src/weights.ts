import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ValueError, type NamedVariable, type TensorData } from '@clip-ts/core';

/**
 * The weights of one tower, named as in the HF checkpoint, with the layout conversions between
 * PyTorch (what stateDict/loadStateDict speak) and tfjs (what the forward pass uses):
 * - `plain`: same shape in both (LayerNorm, biases, embeddings);
 * - `linear`: torch nn.Linear [out, in] ↔ tfjs dense kernel [in, out];
 * - `patch`: torch Conv2d [out, c, kh, kw] ↔ a dense kernel [c·kh·kw, out] applied to flattened patches.
 */
export type WeightLayout = 'plain' | 'linear' | 'patch';

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
}

let instances = 0;

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** HF-layout values → tensor in tfjs layout (caller owns). */
function toTfjs(layout: WeightLayout, hfShape: number[], data: Float32Array): tf.Tensor {
  return tf.tidy(() => {
    if (layout === 'plain') return tf.tensor(data, hfShape, 'float32');
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
   * LayerNorm weights, biases and embedding norms.
   */
  add(
    name: string,
    hfShape: number[],
    layout: WeightLayout,
    init: Float32Array,
    opts: { noDecay: boolean; group: WeightGroup },
  ): tf.Variable {
    if (this.byName.has(name)) throw new Error(`duplicate weight ${name}`);
    const value = toTfjs(layout, hfShape, init);
    const variable = tf.variable(value, true, `${this.scope}/${name}`, 'float32');
    value.dispose();
    const entry: Entry = { name, variable, layout, hfShape, noDecay: opts.noDecay, group: opts.group };
    this.entries.push(entry);
    this.byName.set(name, entry);
    return variable;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  named(): NamedVariable[] {
    return this.entries.map((e) => ({ name: e.name, variable: e.variable, noDecay: e.noDecay }));
  }

  /** Trainable variables, less those `skip` names (weights the forward pass does not use). */
  trainable(skip: (name: string) => boolean = () => false): tf.Variable[] {
    return this.entries.filter((e) => e.variable.trainable && !skip(e.name)).map((e) => e.variable);
  }

  setTrainable(trainable: boolean): void {
    for (const e of this.entries) e.variable.trainable = trainable;
  }

  /**
   * Train only the last `n` of `numBlocks` blocks and what follows them (final LayerNorm, pooler);
   * embeddings and earlier blocks are frozen. n = 0 leaves only the head trainable.
   */
  freezeAllButLast(n: number, numBlocks: number): void {
    if (!Number.isInteger(n) || n < 0) throw new ValueError(`freezeAllButLast: n must be a non-negative integer, got ${n}`);
    const first = numBlocks - n;
    for (const e of this.entries) {
      e.variable.trainable = e.group === 'head' || (typeof e.group === 'number' && e.group >= first);
    }
  }

  get frozen(): boolean {
    return this.entries.every((e) => !e.variable.trainable);
  }

  /** Weights in HF/PyTorch layout; the caller owns the tensors. */
  stateDict(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const e of this.entries) {
      out.set(
        e.name,
        tf.tidy(() => (e.layout === 'plain' ? tf.clone(e.variable) : tf.reshape(tf.transpose(e.variable), e.hfShape))),
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
      if (w.dtype !== 'float32') problems.push(`${e.name}: expected a float tensor, found ${w.storedDtype}`);
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
      const value = toTfjs(e.layout, e.hfShape, w.data as Float32Array);
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
