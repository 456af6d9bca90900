// Copies what the page serves as static files into public/ (gitignored): the tfjs wasm binaries, the
// tiny HF CLIP test fixture, and the `clip demo` checkpoint. The demo checkpoint is the repo's
// runs/demo/best when `npm run demo` has produced one, else $CLIP_WEB_DEMO, else a `clip demo --quick`
// run generated here once (3 s; untrained, so its labels are near chance — say so in the page's model list).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const web = resolve(here, '..');
const repo = resolve(web, '../..');
const pub = join(web, 'public');
const require = createRequire(join(web, 'package.json'));

function copyFiles(fromDir, toDir, names, optional = []) {
  rmSync(toDir, { recursive: true, force: true });
  mkdirSync(toDir, { recursive: true });
  for (const name of [...names, ...optional]) {
    const from = join(fromDir, name);
    if (!existsSync(from)) {
      if (optional.includes(name)) continue;
      throw new Error(`prepare-static: ${from} is missing`);
    }
    copyFileSync(from, join(toDir, name));
  }
}

// tfjs-backend-wasm's entry is dist/…; its binaries sit next to it.
const wasmDist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
const wasmFiles = readdirSync(wasmDist).filter((f) => f.endsWith('.wasm'));
if (wasmFiles.length === 0) throw new Error(`prepare-static: no .wasm files in ${wasmDist}`);
copyFiles(wasmDist, join(pub, 'tfjs-wasm'), wasmFiles);

const checkpointFiles = ['config.json', 'model.safetensors', 'tokenizer.json'];
const optionalFiles = ['tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json'];
copyFiles(join(repo, 'packages/clip-encoders/test/fixtures/hf/clip-tiny'), join(pub, 'models/clip-tiny'), checkpointFiles, optionalFiles);

let demo = process.env.CLIP_WEB_DEMO;
let origin = demo ? `$CLIP_WEB_DEMO (${demo})` : '';
if (!demo && existsSync(join(repo, 'runs/demo/best/config.json'))) {
  demo = join(repo, 'runs/demo/best');
  origin = 'runs/demo/best (npm run demo)';
}
if (!demo) {
  const quickRun = join(repo, '.cache/web-demo-quick');
  demo = join(quickRun, 'best');
  origin = 'clip demo --quick (untrained: npm run demo and rebuild for the trained one)';
  if (!existsSync(join(demo, 'config.json'))) {
    const cli = join(repo, 'packages/clip-cli/dist/cli.js');
    if (!existsSync(cli)) throw new Error(`prepare-static: ${cli} is missing; build the workspace first (npm run build at the root)`);
    console.error('prepare-static: no runs/demo/best; generating a quick demo checkpoint (clip demo --quick)…');
    execFileSync(process.execPath, [cli, 'demo', '--quick', '--out', quickRun], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, CLIP_BACKEND: process.env.CLIP_BACKEND ?? 'wasm' },
    });
  }
}
copyFiles(demo, join(pub, 'models/demo'), checkpointFiles, optionalFiles);
writeFileSync(join(pub, 'models/demo/SOURCE.txt'), `${origin}\n`);
console.error(`prepare-static: public/ ready (demo checkpoint from ${origin})`);
