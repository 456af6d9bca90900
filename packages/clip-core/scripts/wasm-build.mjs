// What the WebAssembly generators (gemm-wasm.mjs, adam-wasm.mjs) share: assembling text with wabt, and writing
// (or, with --check, verifying) the committed bytes module.
import wabtInit from 'wabt';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The binary of module text `wat` (SIMD and threads enabled: the shared-memory variants need the latter). */
export async function assemble(name, wat) {
  const wabt = await wabtInit();
  const features = { simd: true, threads: true };
  const mod = wabt.parseWat(name, wat, features);
  try {
    mod.validate(features);
    return Buffer.from(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/**
 * Run as a script (`scriptUrl` is its import.meta.url): write `text` to `out` (relative to the scripts folder),
 * or with --check exit 1 when the committed file differs. Does nothing when the script is imported.
 */
export async function writeWhenRun(scriptUrl, out, text) {
  const script = fileURLToPath(scriptUrl);
  if (process.argv[1] !== script) return;
  const path = join(dirname(script), out);
  const content = await text();
  if (process.argv.includes('--check')) {
    const current = await readFile(path, 'utf8').catch(() => '');
    if (current !== content) {
      process.stderr.write(`${path} is out of date: run node ${script}\n`);
      process.exit(1);
    }
  } else {
    await writeFile(path, content);
  }
}
