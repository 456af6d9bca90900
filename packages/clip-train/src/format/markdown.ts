export type Align = 'left' | 'right';

/**
 * A GitHub-flavoured markdown table. Columns are padded so the table also reads well as plain text in a
 * terminal; numeric-looking columns are right-aligned unless `align` says otherwise.
 */
export function markdownTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, align?: readonly Align[]): string {
  const cols = headers.length;
  const cells = rows.map((r) => Array.from({ length: cols }, (_, i) => escapeCell(r[i] ?? '')));
  const head = headers.map(escapeCell);
  const aligns: Align[] = Array.from({ length: cols }, (_, i) => {
    const given = align?.[i];
    if (given) return given;
    const numeric = cells.length > 0 && cells.every((r) => /^[-+]?[\d.,]+(%|e[-+]?\d+)?$|^(n\/a|—|-)$/i.test(r[i] ?? ''));
    return numeric ? 'right' : 'left';
  });
  const widths = head.map((h, i) => Math.max(3, h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const pad = (s: string, i: number): string => {
    const w = widths[i] ?? 3;
    return aligns[i] === 'right' ? s.padStart(w) : s.padEnd(w);
  };
  const line = (r: readonly string[]): string => `| ${r.map((c, i) => pad(c, i)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (aligns[i] === 'right' ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(head), rule, ...cells.map(line)].join('\n') + '\n';
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** 0.8042 → "80.42%"; non-finite values print as "n/a" rather than "NaN%". */
export function pct(x: number, digits = 2): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : 'n/a';
}
