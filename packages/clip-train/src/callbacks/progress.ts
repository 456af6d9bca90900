import { SingleBar, Presets } from 'cli-progress';
import { Callback } from './callback.js';
import type { Logs } from '../trainer/types.js';

export interface ProgressOptions {
  epochs: number;
  /** Optimizer-loop batches per epoch, for the bar's total (unknown: the bar counts up). */
  batchesPerEpoch?: number;
  /** Where text goes (stderr in the CLI). */
  write: (text: string) => void;
  /** A TTY stream for the live bar; without one (pipes, CI, tests) one line per epoch is written. */
  tty?: NodeJS.WriteStream;
}

/** Compact `key value` summary of an epoch's logs, as printed per epoch. */
export function formatEpochLine(epoch: number, epochs: number, logs: Logs): string {
  const parts = [`epoch ${epoch + 1}/${epochs}`];
  const num = (v: number) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(2));
  for (const key of ['loss', 'val_loss', 'val_top1', 'val_top5']) {
    const v = logs[key];
    if (v !== undefined) parts.push(`${key} ${num(v)}`);
  }
  for (const [key, v] of Object.entries(logs)) if (key.startsWith('lr_')) parts.push(`${key} ${v.toExponential(2)}`);
  if (logs.seconds !== undefined) parts.push(`${logs.seconds.toFixed(1)}s`);
  return parts.join('  ');
}

/**
 * Progress on stderr: a live bar (cli-progress) with the running loss when attached to a TTY, otherwise
 * exactly one line per epoch, so logs in CI stay readable.
 */
export class ProgressBar extends Callback {
  readonly name = 'progress';
  private bar: SingleBar | null = null;
  private lossSum = 0;
  private lossCount = 0;

  constructor(private readonly options: ProgressOptions) {
    super();
  }

  override onEpochBegin(epoch: number): void {
    this.lossSum = 0;
    this.lossCount = 0;
    if (!this.options.tty?.isTTY) return;
    this.bar = new SingleBar(
      {
        stream: this.options.tty,
        format: `epoch ${epoch + 1}/${this.options.epochs} [{bar}] {value}/{total} loss {loss}`,
        hideCursor: true,
        clearOnComplete: true,
      },
      Presets.shades_classic,
    );
    this.bar.start(this.options.batchesPerEpoch ?? 0, 0, { loss: '-' });
  }

  override onBatchEnd(_batch: number, logs: Logs): void {
    if (logs.loss !== undefined) {
      this.lossSum += logs.loss;
      this.lossCount += 1;
    }
    this.bar?.increment(1, { loss: (this.lossSum / Math.max(1, this.lossCount)).toFixed(4) });
  }

  override onEpochEnd(epoch: number, logs: Logs): void {
    this.bar?.stop();
    this.bar = null;
    this.options.write(`${formatEpochLine(epoch, this.options.epochs, logs)}\n`);
  }

  override onTrainEnd(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
