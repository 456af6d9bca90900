import * as tf from '@tensorflow/tfjs-core';

/**
 * Activation recomputation (gradient checkpointing, HF's `gradient_checkpointing`) for one transformer
 * block. Under a gradient tape tfjs keeps every intermediate of the block for the backward pass (~115 MB
 * per ViT-base row per block); a checkpointed block keeps only its input and reruns the block inside its
 * own gradient during the backward pass, so the tape holds one block's intermediates at a time.
 */

/**
 * A block: its output from its input and the tensors it reads but does not train (`constants`, handed
 * in again because the caller's copies may be disposed by the time the backward pass runs). Its weights
 * it reads by closure.
 */
export type BlockFn = (x: tf.Tensor, constants: readonly tf.Tensor[]) => tf.Tensor;

/** The generator the block's dropout draws from, so the recomputation draws the same masks. */
export interface GeneratorState {
  state: number;
}

/** The engine fields the nested tape touches (tfjs 4 Engine.state; not in its public typings). */
interface TapeState {
  activeTape: unknown;
}

/**
 * `block(x, constants)` with its intermediates recomputed in the backward pass. Gradients flow to `x` and
 * to every tensor of `weights`, which must be the very tensors the block reads (they become inputs of the
 * custom gradient, and the recomputation differentiates with respect to them by identity); `constants`
 * (e.g. an attention mask) get none. `rng` is restored
 * to the state the forward started from for the recomputation, then put back. The caller owns the result.
 */
export function checkpointBlock(
  block: BlockFn,
  x: tf.Tensor,
  weights: readonly tf.Tensor[],
  constants: readonly tf.Tensor[] = [],
  rng?: GeneratorState,
): tf.Tensor {
  const start = rng?.state;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor;
    // Saved tensors are kept (clones sharing the data) until the outer backward pass ends; only the block
    // input and the constants are saved, not the intermediates the forward below disposes.
    save([input, ...constants]);
    const value = block(input, constants);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [sx, ...sc] = saved as [tf.Tensor, ...tf.Tensor[]];
      const engineState = (tf.engine() as unknown as { state: TapeState }).state;
      // A gradient computed during another's backward pass (gradient depth 0 again) replaces the engine's
      // active tape and clears it when done, which would leave the outer pass without its tape to clean up.
      const outerTape = engineState.activeTape;
      const after = rng?.state;
      if (rng && start !== undefined) rng.state = start;
      try {
        // The weights are passed back as they are, so the block's closure reads exactly the tensors differentiated.
        return tf.grads((xi: tf.Tensor) => block(xi, sc))([sx, ...weights], dy);
      } finally {
        engineState.activeTape = outerTape;
        if (rng && after !== undefined) rng.state = after;
      }
    };
    return { value, gradFunc };
  });
  return f(x, ...weights);
}
