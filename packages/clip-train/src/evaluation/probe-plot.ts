import * as path from 'node:path';
import { writeFileAtomic } from '@clip-ts/core/node';
import type { TopLevelSpec } from 'vega-lite';
import { renderVegaLite } from '../plot/render.js';
import type { KShotPoint } from './probe.js';

// The "zero-shot vs few-shot linear probe" figure of CLIP's paper: k-shot top-1 (mean ± std over draws)
// against k on a log2 axis, zero-shot and the full-data probe as horizontal reference lines. Rendered
// like the loss curve, by plot/render.ts (vega headless to SVG, sharp to PNG).

export interface KShotPlotInput {
  points: readonly KShotPoint[];
  /** Zero-shot top-1 of the same checkpoint on the same test set. */
  zeroShot: number;
  /** Full-train linear probe top-1, when it was run. */
  fullProbe?: number;
  chance: number;
  title?: string;
}

/** The vega-lite spec of the k-shot figure (accuracies in %). */
export function kShotSpec(input: KShotPlotInput): TopLevelSpec {
  const curve = input.points.flatMap((p) => {
    const t = p.topK[1];
    return t ? [{ shots: p.shots, mean: 100 * t.mean, lo: 100 * (t.mean - t.std), hi: 100 * (t.mean + t.std) }] : [];
  });
  const refs = [
    { label: 'zero-shot', value: 100 * input.zeroShot },
    ...(input.fullProbe === undefined ? [] : [{ label: 'linear probe (all train)', value: 100 * input.fullProbe }]),
    { label: 'chance', value: 100 * input.chance },
  ];
  const x = { field: 'shots', type: 'quantitative', scale: { type: 'log', base: 2 }, axis: { values: curve.map((c) => c.shots), format: 'd' }, title: 'labelled images per class' } as const;
  // One colour scale for the curve and the reference lines, so the legend names each of them once.
  const curveName = 'k-shot linear probe (mean ± std)';
  const names = [curveName, ...refs.map((r) => r.label)];
  const palette: Record<string, string> = { [curveName]: '#4c78a8', 'zero-shot': '#e45756', 'linear probe (all train)': '#54a24b', chance: '#9d9d9d' };
  const color = { scale: { domain: names, range: names.map((n) => palette[n] ?? '#000000') }, legend: { labelLimit: 320, title: null } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: input.title ?? 'Zero-shot vs k-shot linear probe',
    width: 480,
    height: 300,
    background: 'white',
    layer: [
      {
        data: { values: curve },
        mark: { type: 'errorband', opacity: 0.25 },
        encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'top-1 accuracy (%)' }, y2: { field: 'hi' }, color: { datum: curveName, ...color } },
      },
      { data: { values: curve }, mark: { type: 'line', point: true }, encoding: { x, y: { field: 'mean', type: 'quantitative' }, color: { datum: curveName, ...color } } },
      {
        data: { values: refs },
        mark: { type: 'rule', strokeDash: [6, 4] },
        encoding: { y: { field: 'value', type: 'quantitative' }, color: { field: 'label', type: 'nominal', ...color } },
      },
    ],
  };
}

/** SVG and PNG of the k-shot figure. */
export async function renderKShotPlot(input: KShotPlotInput): Promise<{ svg: string; png: Uint8Array }> {
  return renderVegaLite(kShotSpec(input));
}

/** Writes `<dir>/<name>.svg` and `.png`; returns their paths. */
export async function writeKShotPlot(dir: string, input: KShotPlotInput, name = 'kshot'): Promise<{ svg: string; png: string }> {
  const { svg, png } = await renderKShotPlot(input);
  const out = { svg: path.join(dir, `${name}.svg`), png: path.join(dir, `${name}.png`) };
  await writeFileAtomic(out.svg, svg);
  await writeFileAtomic(out.png, png);
  return out;
}
