import * as path from 'node:path';
import { writeFileAtomic } from '@clip-ts/core/node';
import type { TopLevelSpec } from 'vega-lite';
import { renderVegaLite } from '../plot/render.js';
import { Callback } from './callback.js';
import type { Logs } from '../trainer/types.js';

/** The vega-lite spec of the train-vs-validation loss curve (1-based epochs on x). */
export function lossCurveSpec(history: readonly Logs[], title = 'CLIP loss'): TopLevelSpec {
  const values: Array<{ epoch: number; split: string; loss: number }> = [];
  for (const h of history) {
    const epoch = (h.epoch ?? 0) + 1;
    if (h.loss !== undefined && Number.isFinite(h.loss)) values.push({ epoch, split: 'train', loss: h.loss });
    if (h.val_loss !== undefined && Number.isFinite(h.val_loss)) values.push({ epoch, split: 'validation', loss: h.val_loss });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 480,
    height: 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' }, title: 'epoch' },
      y: { field: 'loss', type: 'quantitative', scale: { zero: false }, title: 'loss' },
      color: { field: 'split', type: 'nominal', title: null, sort: ['train', 'validation'] },
    },
  };
}

/** The loss curve as SVG and PNG (see renderVegaLite). */
export async function renderLossCurve(history: readonly Logs[], title?: string): Promise<{ svg: string; png: Uint8Array }> {
  return renderVegaLite(lossCurveSpec(history, title));
}

/** Writes `loss.svg` and `loss.png` in `dir` after every epoch (train vs validation loss). */
export class LossPlot extends Callback {
  readonly name = 'lossPlot';
  constructor(
    readonly dir: string,
    private readonly title?: string,
  ) {
    super();
  }

  override async onEpochEnd(): Promise<void> {
    await writeLossPlot(this.dir, this.trainer.history, this.title);
  }
}

export async function writeLossPlot(dir: string, history: readonly Logs[], title?: string): Promise<void> {
  const { svg, png } = await renderLossCurve(history, title);
  await writeFileAtomic(path.join(dir, 'loss.svg'), svg);
  await writeFileAtomic(path.join(dir, 'loss.png'), png);
}
