import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './helpers/ensure-built.js';

/**
 * The main entries of @clip-ts/core and @clip-ts/encoders must bundle for a browser with no Node polyfills:
 * every import resolves and none is a Node builtin. Bundled from the built dist through the packages'
 * real `exports`/`imports` maps (so `#platform` picks its browser module), as an app's bundler would.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['clip-core', 'clip-encoders'] as const;
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const SELF = Symbol('record-node-builtins');

interface BundleReport {
  /** `importer → specifier` for every Node builtin reached. */
  builtins: string[];
  /** esbuild errors (unresolved modules and the like). */
  errors: string[];
  /** Files that went into the bundle, repo-relative. */
  inputs: string[];
}

/** Bundle `source` (an ES module's text, resolved from the repo root) for the browser. */
async function bundleForBrowser(source: string): Promise<BundleReport> {
  const builtins: string[] = [];
  // Records builtins instead of stopping at the first, so a failure lists all of them.
  const spy: esbuild.Plugin = {
    name: 'record-node-builtins',
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (!BUILTINS.has(args.path) || args.pluginData === SELF) return undefined;
        // A package may map a builtin away for browsers (`"browser": {"fs": false}`, as tfjs-backend-wasm
        // and seedrandom do); only what esbuild cannot resolve without Node is an offender.
        const normal = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: SELF,
        });
        if (normal.errors.length === 0) return undefined;
        builtins.push(`${args.importer.replace(ROOT, '')} → ${args.path}`);
        return { path: args.path, external: true };
      });
    },
  };
  try {
    const result = await esbuild.build({
      stdin: { contents: source, resolveDir: ROOT, loader: 'js' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      // Not the repo's tsconfig: its `paths` point at src for the tests; an app resolves the packages.
      tsconfigRaw: '{}',
      plugins: [spy],
    });
    return { builtins, errors: [], inputs: Object.keys(result.metafile.inputs) };
  } catch (err) {
    const errors = (err as esbuild.BuildFailure).errors?.map((e) => `${e.location?.file ?? ''}: ${e.text}`) ?? [String(err)];
    return { builtins, errors, inputs: [] };
  }
}

beforeAll(() => {
  ensureBuilt(PACKAGES);
}, 180_000);

describe('browser bundle', () => {
  it('@clip-ts/core and @clip-ts/encoders bundle for the browser with no Node builtin and nothing unresolved', async () => {
    const report = await bundleForBrowser(`export * from '@clip-ts/core';\nexport * from '@clip-ts/encoders';\n`);
    expect(report.errors).toEqual([]);
    expect(report.builtins).toEqual([]);
    // The browser half of `#platform` went in, the Node half did not; the towers and tfjs did.
    expect(report.inputs).toContain('packages/clip-core/dist/platform/browser.js');
    expect(report.inputs).not.toContain('packages/clip-core/dist/platform/node.js');
    expect(report.inputs).toContain('packages/clip-encoders/dist/vit.js');
    // Likewise encoders' `#clip-platform` (CLIP's loading and image decoding).
    expect(report.inputs).toContain('packages/clip-encoders/dist/clip-api.js');
    expect(report.inputs).toContain('packages/clip-encoders/dist/platform/browser.js');
    expect(report.inputs).not.toContain('packages/clip-encoders/dist/platform/node.js');
    expect(report.inputs.some((f) => f.includes('@tensorflow/tfjs-backend-webgl'))).toBe(true);
    expect(report.inputs.some((f) => f.includes('sharp'))).toBe(false);
  }, 120_000);

  it('the /node entries do NOT bundle for the browser (so the check above can fail)', async () => {
    for (const pkg of PACKAGES) {
      const report = await bundleForBrowser(`export * from './packages/${pkg}/dist/node.js';\n`);
      expect(report.builtins.length + report.errors.length, pkg).toBeGreaterThan(0);
      expect(report.builtins.some((b) => b.endsWith('→ node:fs/promises')), pkg).toBe(true);
    }
    // Through the package name, a browser bundler finds no `/node` export at all.
    const viaName = await bundleForBrowser(`export * from '@clip-ts/core/node';\n`);
    expect(viaName.errors.join('\n')).toMatch(/@clip-ts\/core\/node/);
  }, 120_000);
});
