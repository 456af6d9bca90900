import { Rng } from '@clip-ts/core';
import { boxBlur } from './blur.js';
import type { ShapeKind } from './palette.js';
import type { Scene } from './scene.js';

// Unit shapes in local coordinates (y down), half-extent 1, as flat [x0, y0, x1, y1, ...] polygons.
const STAR = Float64Array.from(
  Array.from({ length: 10 }, (_, k) => {
    const a = -Math.PI / 2 + (k * Math.PI) / 5;
    const rad = k % 2 === 0 ? 1 : 0.45;
    return [rad * Math.cos(a), rad * Math.sin(a)];
  }).flat(),
);
const TRIANGLE = Float64Array.from([0, -1, 0.93, 0.75, -0.93, 0.75]);

function inPolygon(poly: Float64Array, x: number, y: number): boolean {
  let inside = false;
  const n = poly.length;
  for (let i = 0, j = n - 2; i < n; j = i, i += 2) {
    const xi = poly[i] as number;
    const yi = poly[i + 1] as number;
    const xj = poly[j] as number;
    const yj = poly[j + 1] as number;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function insideUnit(shape: ShapeKind, x: number, y: number): boolean {
  switch (shape) {
    case 'circle':
      return x * x + y * y <= 1;
    case 'square':
      return Math.abs(x) <= 0.85 && Math.abs(y) <= 0.85;
    case 'triangle':
      return inPolygon(TRIANGLE, x, y);
    case 'star':
      return inPolygon(STAR, x, y);
    case 'cross':
      return (Math.abs(x) <= 0.32 && Math.abs(y) <= 0.95) || (Math.abs(y) <= 0.32 && Math.abs(x) <= 0.95);
  }
}

/** Render an item to interleaved RGB uint8 (S×S×3): 2×2 supersampled edges, light noise, optional blur. */
export function render(item: Scene, S: number): Uint8Array {
  const out = new Float32Array(S * S * 3);
  const noise = new Rng(item.noiseSeed);
  const [br, bg, bb] = item.bgRgb;
  for (let p = 0; p < S * S; p++) {
    const n = (noise.next() * 2 - 1) * 6;
    out[p * 3] = br + n;
    out[p * 3 + 1] = bg + n;
    out[p * 3 + 2] = bb + n;
  }
  for (const sh of item.shapes) {
    const cos = Math.cos(sh.angle);
    const sin = Math.sin(sh.angle);
    const inv = 1 / sh.r;
    const kind = sh.combo.shape;
    const [sr, sg, sb] = sh.rgb;
    const x0 = Math.max(0, Math.floor(sh.cx - sh.r * 1.1));
    const x1 = Math.min(S - 1, Math.ceil(sh.cx + sh.r * 1.1));
    const y0 = Math.max(0, Math.floor(sh.cy - sh.r * 1.1));
    const y1 = Math.min(S - 1, Math.ceil(sh.cy + sh.r * 1.1));
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        let cover = 0;
        for (let k = 0; k < 4; k++) {
          const dx = (px + 0.25 + 0.5 * (k & 1) - sh.cx) * inv;
          const dy = (py + 0.25 + 0.5 * (k >> 1) - sh.cy) * inv;
          if (insideUnit(kind, cos * dx + sin * dy, -sin * dx + cos * dy)) cover++;
        }
        if (cover === 0) continue;
        const a = cover / 4;
        const o = (py * S + px) * 3;
        out[o] = (1 - a) * (out[o] as number) + a * sr;
        out[o + 1] = (1 - a) * (out[o + 1] as number) + a * sg;
        out[o + 2] = (1 - a) * (out[o + 2] as number) + a * sb;
      }
    }
  }
  if (item.blurry) {
    const radius = Math.max(1, Math.round(S / 20));
    boxBlur(out, S, radius);
    boxBlur(out, S, radius);
  }
  return Uint8Array.from(out, (v) => Math.max(0, Math.min(255, Math.round(v))));
}
