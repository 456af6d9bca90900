import * as path from 'node:path';
import { writeFileAtomic } from '@clip-ts/core/node';
import { Callback } from './callback.js';

/**
 * Writes the epoch history as `history.csv` and `history.jsonl` in `dir` after every epoch. Each file is
 * rewritten whole from the trainer's history (atomically), so a resumed run's files continue seamlessly.
 */
export class HistoryLogger extends Callback {
  readonly name = 'historyLogger';
  constructor(readonly dir: string) {
    super();
  }

  get csvPath(): string {
    return path.join(this.dir, 'history.csv');
  }

  get jsonlPath(): string {
    return path.join(this.dir, 'history.jsonl');
  }

  override async onEpochEnd(): Promise<void> {
    await writeHistory(this.dir, this.trainer.history);
  }
}

/** Column order: epoch first, then the keys in first-seen order. */
export function historyColumns(history: ReadonlyArray<Record<string, number>>): string[] {
  const cols: string[] = ['epoch'];
  for (const row of history) for (const k of Object.keys(row)) if (!cols.includes(k)) cols.push(k);
  return cols;
}

export async function writeHistory(dir: string, history: ReadonlyArray<Record<string, number>>): Promise<void> {
  const cols = historyColumns(history);
  const cell = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '' : String(v));
  // epoch is 0-based inside the trainer, 1-based in files people read.
  const rows = history.map((h) => cols.map((c) => cell(c === 'epoch' ? (h.epoch ?? 0) + 1 : h[c])).join(','));
  const jsonl = history.map((h) => JSON.stringify({ ...h, epoch: (h.epoch ?? 0) + 1 })).join('\n');
  await writeFileAtomic(path.join(dir, 'history.csv'), `${[cols.join(','), ...rows].join('\n')}\n`);
  await writeFileAtomic(path.join(dir, 'history.jsonl'), history.length > 0 ? `${jsonl}\n` : '');
}
