import type { RecallAtK } from '@clip-ts/core';
import { markdownTable, pct } from '../format/markdown.js';
import type { Logs } from '../trainer/types.js';

export interface SplitMetrics {
  loss: number;
  /** In-batch image→text accuracy per k (key `top1`, `top5`, ...). */
  topK: Record<string, number>;
  /** In-batch text→image accuracy per k. */
  textTopK: Record<string, number>;
  /** In-batch metrics are out of this many candidates (the eval batch size; the last batch may be smaller). */
  batchSize: number;
}

export interface Results {
  runDir: string;
  /** tfjs backend that ran (e.g. 'wasm'). */
  backend: string;
  seed: number;
  /** Epochs completed (including resumed ones). */
  epochs: number;
  /** 1-based epoch whose weights were evaluated (best validation loss). */
  bestEpoch: number;
  stoppedEarly: boolean;
  /** True when aborted (Ctrl-C): last/ holds a resumable checkpoint and no test metrics were computed. */
  interrupted: boolean;
  /** Training ran on cached frozen-tower features. */
  featureCache: boolean;
  trainBatchSize: number;
  /** Best epoch's validation metrics. */
  val: SplitMetrics | null;
  /** With training.ema: the averaged weights' validation metrics at the best epoch (best/ema). */
  emaVal?: SplitMetrics;
  test: (SplitMetrics & { retrieval: { images: number; captions: number; recall: RecallAtK[] } }) | null;
  history: Logs[];
  wallSeconds: number;
}

/** Split `val_top1`-style epoch logs into SplitMetrics. */
export function splitMetricsFromLogs(logs: Logs, prefix: string): SplitMetrics {
  const topK: Record<string, number> = {};
  const textTopK: Record<string, number> = {};
  for (const [k, v] of Object.entries(logs)) {
    if (!k.startsWith(prefix)) continue;
    const key = k.slice(prefix.length);
    if (/^top\d+$/.test(key)) topK[key] = v;
    const t = /^text_(top\d+)$/.exec(key);
    if (t) textTopK[t[1] as string] = v;
  }
  return { loss: logs[`${prefix}loss`] ?? NaN, topK, textTopK, batchSize: logs[`${prefix}batch_size`] ?? 0 };
}

/**
 * The results as a markdown table shaped like the reference's (rows: metric, columns: value): test loss,
 * in-batch top-k (image→text, the reference's protocol), then full-split Recall@K both ways.
 */
export function formatResultsTable(r: Results): string {
  const rows: Array<[string, string]> = [];
  if (r.test) {
    rows.push(['Test loss', r.test.loss.toFixed(4)]);
    for (const [k, v] of Object.entries(r.test.topK)) rows.push([`Test ${k.replace('top', 'top-')} accuracy (in-batch, batch ${r.test.batchSize})`, pct(v)]);
    for (const rec of r.test.retrieval.recall) rows.push([`Image→text Recall@${rec.k} (${r.test.retrieval.images} images)`, pct(rec.imageToText)]);
    for (const rec of r.test.retrieval.recall) rows.push([`Text→image Recall@${rec.k} (${r.test.retrieval.captions} captions)`, pct(rec.textToImage)]);
  }
  if (r.val) rows.push([`Best validation loss (epoch ${r.bestEpoch})`, r.val.loss.toFixed(4)]);
  if (r.emaVal) rows.push([`Validation loss of the EMA weights (epoch ${r.bestEpoch}, best/ema)`, r.emaVal.loss.toFixed(4)]);
  rows.push(['Epochs trained', `${r.epochs}${r.stoppedEarly ? ' (early stopping)' : ''}${r.interrupted ? ' (interrupted)' : ''}`]);
  // Left-aligned like the reference's table; no trailing newline, callers join it with other text.
  return markdownTable(['Metric', 'Value'], rows, ['left', 'left']).trimEnd();
}
