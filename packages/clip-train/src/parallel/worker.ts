/**
 * Entry point of a data-parallel worker thread (one model replica). It builds the model from main's
 * config, takes main's weights from shared memory, then per step: refresh the trainable weights, run its
 * shard through shardLoss (which all-gathers the embeddings), write its gradients into its shared slot.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { CLIPModel, hash32, initBackend, type AnyBackendName } from '@clip-ts/core';
import '@clip-ts/encoders'; // registers the vit / distilbert / ... towers that CLIPModel.fromConfig builds
import { findRngs } from '../trainer/rng-state.js';
import { arrive, CTRL, fail } from './barrier.js';
import { sharedGather } from './gather.js';
import { heapView } from './heap-view.js';
import { readVariables } from './layout.js';
import type { InitMessage, StepMessage, WorkerReply } from './protocol.js';
import { shardLoss } from './shard-step.js';
import { PhaseClock } from './timing.js';

const port = parentPort;
if (!port) throw new Error('parallel/worker.js must run in a worker thread');
const init = workerData as InitMessage;
const reply = (m: WorkerReply): void => port.postMessage(m);
const clock = new PhaseClock(init.phaseTimes, init.replica);
// A thread that ends by process.exit or a fatal error must still release replicas blocked on a barrier.
let closing = false;
process.on('exit', () => {
  if (!closing) fail(init.control, `replica ${init.replica} exited`);
});

async function start(): Promise<{ model: CLIPModel; byName: Map<string, tf.Variable>; trainable: Set<string> }> {
  // One wasm thread per replica: main chose the replica count to fill the cores.
  await initBackend(init.backend as AnyBackendName, { threads: 1 });
  const model = CLIPModel.fromConfig(init.modelConfig, { source: `replica ${init.replica}` });
  const byName = new Map(model.namedVariables().map((nv) => [nv.name, nv.variable] as const));
  readVariables(init.weightsLayout, byName, init.weights);
  const trainable = new Set(init.gradLayout.names);
  // Match main's freeze: only its trainable weights get gradients.
  for (const [name, v] of byName) v.trainable = trainable.has(name);
  return { model, byName, trainable };
}

function runStep(ctx: Awaited<ReturnType<typeof start>>, m: StepMessage): void {
  const { model, byName, trainable } = ctx;
  if (init.fault?.step === m.step) {
    if (init.fault.kind === 'exit') process.exit(1);
    throw new Error(`injected fault at step ${m.step}`);
  }
  clock.reset();
  readVariables(init.gradLayout, byName, init.weights, trainable);
  clock.mark('weights');
  // Dropout: a stream per (main's state at this step, replica), so a run is deterministic for a given
  // worker count and a resume (which restores main's states) redraws the same masks.
  const rngs = findRngs(model);
  rngs.forEach((r, i) => {
    r.state = hash32(m.rngStates[i] as number, init.replica);
  });
  const rows = { start: m.rowStart, end: m.rowEnd, batchSize: m.batchSize };
  const { gather, failure } = sharedGather({ ...init, dim: model.projectionDim }, m.step, rows, clock);
  const slot = init.grads[init.replica] as Float32Array;
  const lossVars = new Set([model.logitScale.name, model.logitBias?.name]);
  tf.tidy(() => {
    const n = m.rowEnd - m.rowStart;
    const shard =
      n > 0
        ? {
            pixels: tf.tensor4d(m.pixels, m.pixelShape),
            inputIds: tf.tensor2d(m.inputIds, [n, m.seqLength], 'int32'),
            attentionMask: tf.tensor2d(m.attentionMask, [n, m.seqLength], 'int32'),
          }
        : undefined;
    const positives = m.positives ? tf.tensor2d(m.positives, [m.batchSize, m.batchSize]) : undefined;
    const variables = init.gradLayout.names.map((name) => byName.get(name) as tf.Variable);
    const { grads } = tf.variableGrads(() => shardLoss(model, init.frozen, shard, rows, gather, positives), variables);
    clock.mark('lossBackward');
    const failed = failure();
    if (failed) throw failed;
    init.gradLayout.names.forEach((name, i) => {
      const v = byName.get(name) as tf.Variable;
      const g = grads[v.name];
      const off = init.gradLayout.offsets[i] as number;
      // The loss's own weights get the full gradient on every replica: main's copy is the one counted.
      if (!g || lossVars.has(v.name)) slot.fill(0, off, off + v.size);
      else slot.set(heapView(g) ?? (g.dataSync() as Float32Array), off);
    });
  });
  clock.mark('grads');
  arrive(init.control, CTRL.GRADS);
}

let ctx: Awaited<ReturnType<typeof start>> | undefined;
port.on('message', (m: StepMessage | { type: 'close' }) => {
  if (m.type === 'close') {
    closing = true;
    ctx?.model.dispose();
    port.close();
    return;
  }
  try {
    if (!ctx) throw new Error('step before the replica was ready');
    runStep(ctx, m);
  } catch (err) {
    fail(init.control, `replica ${init.replica}, step ${m.step}: ${(err as Error).message}`);
  }
});
start().then(
  (c) => {
    ctx = c;
    reply({ type: 'ready', rngCount: findRngs(c.model).length });
  },
  (err: unknown) => {
    reply({ type: 'error', message: `replica ${init.replica} could not start: ${(err as Error).message}` });
  },
);
