// Formats bench results (the object bench/run.mjs writes to bench/results.json) as a Markdown table.
// Shared by run.mjs (stdout) and render-doc.mjs (docs/benchmarks.md) so both show the same numbers.

const fmt = (v, digits = 2) => {
  if (v === null || v === undefined) return '—';
  if (typeof v !== 'number' || Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(digits);
};

const status = (row) => {
  if (row.met === true) return 'met';
  if (row.met === false) return 'NOT met';
  return '';
};

/** The results table: one line per measurement; missing measurements say why. */
export function resultsTable(results) {
  const lines = [
    '| measurement | clip-ts | reference | ratio | target | note |',
    '|---|---:|---:|---:|---|---|',
  ];
  for (const row of results.rows) {
    const unit = row.unit ? ` ${row.unit}` : '';
    const ours = row.ours === null || row.ours === undefined ? (row.unavailable ? 'n/a' : '—') : `${fmt(row.ours)}${unit}`;
    const ref = row.reference === null || row.reference === undefined ? '—' : `${fmt(row.reference)}${unit}`;
    const ratio = row.ratio === null || row.ratio === undefined ? '—' : `${fmt(row.ratio)}×`;
    const target = row.target ? `${row.target} ${status(row)}`.trim() : '';
    const note = [row.unavailable ? `not available: ${row.unavailable}` : '', row.note ?? ''].filter(Boolean).join('; ');
    lines.push(`| ${row.name} | ${ours} | ${ref} | ${ratio} | ${target} | ${note.replace(/\|/g, '\\|')} |`);
  }
  return lines.join('\n');
}

/** Top kernels of the profiled training step. */
export function profileTable(profile, top = 12) {
  if (!profile?.kernels?.length) return '';
  const total = profile.totalKernelMs || 1;
  const lines = ['| kernel | ms | share | calls |', '|---|---:|---:|---:|'];
  for (const k of profile.kernels.slice(0, top)) {
    lines.push(`| ${k.kernel} | ${k.ms} | ${((100 * k.ms) / total).toFixed(1)}% | ${k.calls} |`);
  }
  return lines.join('\n');
}

/** One line about the machine and its load while the bench ran. */
export function machineLine(meta) {
  const load = (l) => (l ? l.map((x) => x.toFixed(2)).join(' / ') : '?');
  return (
    `${meta.cpuModel} × ${meta.cpus} logical CPUs, ${meta.memGiB} GiB RAM; ${meta.os}; Node ${meta.node}, ` +
    (meta.wasmThreads ? `wasm backend on ${meta.wasmThreads} thread(s), ` : '') +
    `tfjs ${meta.tfjs}; ${meta.python ?? 'no python3 with torch'}. ` +
    `Load average (1/5/15 min) at start ${load(meta.loadStart)}, at end ${load(meta.loadEnd)}. ${meta.date}.`
  );
}
