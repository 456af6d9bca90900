/**
 * Entry point of a forward-only replica (EmbedPool): builds the model from main's config and weights,
 * then answers each request with its rows' embeddings or features.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CLIPModel, initBackend, type AnyBackendName } from '@clip-ts/core';
import '@clip-ts/encoders'; // registers the vit / distilbert / ... towers that CLIPModel.fromConfig builds
import { embedRows } from './embed-op.js';
import type { EmbedInit, EmbedReply, EmbedRequest } from './embed-protocol.js';
import { readVariables } from './layout.js';

const port = parentPort;
if (!port) throw new Error('parallel/embed-worker.js must run in a worker thread');
const init = workerData as EmbedInit;
const reply = (m: EmbedReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

async function start(): Promise<CLIPModel> {
  // One wasm thread per replica: main chose the replica count to fill the cores.
  await initBackend(init.backend as AnyBackendName, { threads: 1 });
  const model = CLIPModel.fromConfig(init.modelConfig, { source: `replica ${init.replica}` });
  readVariables(init.weightsLayout, new Map(model.namedVariables().map((nv) => [nv.name, nv.variable] as const)), init.weights);
  return model;
}

let model: CLIPModel | undefined;
port.on('message', (m: EmbedRequest | { type: 'close' }) => {
  if (m.type === 'close') {
    model?.dispose();
    port.close();
    return;
  }
  try {
    if (!model) throw new Error('request before the replica was ready');
    if (init.fault?.request === m.id) {
      if (init.fault.kind === 'exit') process.exit(1);
      throw new Error(`injected fault at request ${m.id}`);
    }
    const data = embedRows(model, m.kind, m.rows);
    reply({ type: 'result', id: m.id, data }, [data.buffer as ArrayBuffer]);
  } catch (err) {
    reply({ type: 'error', id: m.id, message: `replica ${init.replica}, request ${m.id}: ${(err as Error).message}` });
  }
});
start().then(
  (c) => {
    model = c;
    reply({ type: 'ready' });
  },
  (err: unknown) => {
    reply({ type: 'error', id: -1, message: `replica ${init.replica} could not start: ${(err as Error).message}` });
  },
);
