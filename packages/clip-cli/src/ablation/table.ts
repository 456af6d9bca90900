import { markdownTable, num, pct } from '../support/format.js';
import type { AblationReport } from './run.js';

/** The ablation as markdown: one row per variant, then each variant's note. */
export function ablationMarkdown(r: AblationReport): string {
  const rows = r.rows.map((x) => [
    x.variant,
    pct(x.heldOutTop1),
    pct(x.heldOutOnlyTop1),
    pct(x.seenTop1),
    num(x.testLoss),
    `${x.epochs} (best ${x.bestEpoch})`,
    x.wallSeconds.toFixed(0),
    x.cpuSeconds.toFixed(0),
    num(x.loadAverage, 1),
  ]);
  const table = markdownTable(
    [
      'variant',
      'held-out top-1 of 30',
      'held-out top-1 of the unseen names',
      'seen top-1 of 30',
      'test loss',
      'epochs',
      'wall s',
      'CPU s',
      'load avg',
    ],
    rows,
  );
  const mode = r.quick ? 'quick mode (QUICK_DEMO sliver; accuracy not meaningful)' : 'the full demo setting (FULL_DEMO)';
  return [
    `Demo ablation on ${mode}${r.epochs === undefined ? '' : `, every variant ${r.epochs} epoch(s)`}. Top-1 is the best of the demo's prompts.`,
    '',
    table.trimEnd(),
    '',
    ...r.rows.map((x) => `- \`${x.variant}\`: ${x.note}`),
    '',
  ].join('\n');
}
