import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** A vega-lite chart rendered headless: SVG from vega's renderer-less View, PNG from that SVG via sharp. */
export async function renderVegaLite(spec: TopLevelSpec): Promise<{ svg: string; png: Uint8Array }> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const png = await sharp(Buffer.from(svg)).png().toBuffer();
    return { svg, png: new Uint8Array(png) };
  } finally {
    view.finalize();
  }
}
