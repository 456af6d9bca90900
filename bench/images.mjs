// Generates the image-pipeline bench set: JPEGs of the sizes photo datasets have (Flickr8k is mostly
// 500×375 / 375×500 / 500×333), with what makes decoding and resizing cost what it costs on photos:
// smooth lighting gradients, soft-edged objects, fine texture and sensor-like noise (no flat colour,
// which JPEG compresses to almost nothing).
import sharp from 'sharp';
import { Rng } from '@clip-ts/core';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

const SIZES = [
  [500, 375],
  [375, 500],
  [500, 333],
  [500, 375],
  [333, 500],
];

function render(width, height, seed) {
  const rng = new Rng(seed); // deterministic images for a given seed
  const r = () => rng.next();
  const px = Buffer.alloc(width * height * 3);
  const base = [0, 1, 2].map(() => [r() * 255, (r() - 0.5) * 200, (r() - 0.5) * 200]);
  const blobs = Array.from({ length: 6 + Math.floor(r() * 6) }, () => ({
    x: r() * width, y: r() * height, rad: 20 + r() * 120, col: [r() * 255, r() * 255, r() * 255],
  }));
  const fx = 0.02 + r() * 0.2;
  const fy = 0.02 + r() * 0.2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width;
      const v = y / height;
      let w = 0;
      const mix = [0, 0, 0];
      for (const b of blobs) {
        const d = Math.hypot(x - b.x, y - b.y) / b.rad;
        const a = d < 1 ? 1 - d * d : 0;
        w += a;
        for (let c = 0; c < 3; c++) mix[c] += a * b.col[c];
      }
      const texture = 18 * Math.sin(x * fx + 3 * Math.sin(y * fy)) * Math.cos(y * fx * 0.7);
      for (let c = 0; c < 3; c++) {
        const [b0, bu, bv] = base[c];
        const grad = b0 + bu * u + bv * v;
        const val = (grad + mix[c]) / (1 + w) + texture + (r() + r() + r() - 1.5) * 24;
        px[(y * width + x) * 3 + c] = val < 0 ? 0 : val > 255 ? 255 : val;
      }
    }
  }
  return px;
}

/** Write `count` JPEGs into `dir`; returns their paths. */
export async function writeBenchImages(dir, count = 64) {
  await mkdir(dir, { recursive: true });
  const paths = [];
  for (let i = 0; i < count; i++) {
    const [width, height] = SIZES[i % SIZES.length];
    const path = join(dir, `img_${String(i).padStart(3, '0')}.jpg`);
    await sharp(render(width, height, 1000 + i), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(path);
    paths.push(path);
  }
  return paths;
}
