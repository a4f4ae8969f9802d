// The one build script: every bundle the project ships is produced here.
// `node esbuild.mjs` builds once; `--watch` rebuilds on change; `--production` minifies.
import * as esbuild from 'esbuild';
import { chmodSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/** Node bundles: the extension, the CLI, the language server, the training worker thread, and piscina's worker runtime. */
const nodeBundles = [
  // The extension host loads this; `vscode` is provided by the editor.
  { entryPoints: ['src/extension/main.ts'], outfile: 'dist/extension.js', external: ['vscode', '@napi-rs/nice'] },
  { entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { entryPoints: ['src/server/main.ts'], outfile: 'dist/server.js' },
  { entryPoints: ['src/worker/trainWorker.ts'], outfile: 'dist/trainWorker.js' },
  { entryPoints: ['src/worker/prepareWorker.ts'], outfile: 'dist/prepareWorker.js' },
  { entryPoints: ['src/worker/countsWorker.ts'], outfile: 'dist/countsWorker.js' },
  // piscina starts its threads from `${__dirname}/worker.js`; bundled, __dirname is dist/.
  { entryPoints: ['node_modules/piscina/dist/worker.js'], outfile: 'dist/worker.js' },
];

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  // piscina's optional native helper for thread priorities; it tolerates its absence.
  external: ['@napi-rs/nice'],
};

// ---- WASM kernels: src/ml/kernels/assembly (AssemblyScript) → dist/kernels.wasm --------
// Built once, before the bundles (also in --watch mode: re-run to rebuild the kernels).
// SIMD128 on; imports a shared env.memory (max 4 GiB) so worker threads share tensors;
// stub runtime, no asserts/abort import: the module allocates nothing and owns no memory.
{
  const { default: asc } = await import('assemblyscript/asc');
  const { error, stderr } = await asc.main([
    'src/ml/kernels/assembly/index.ts', '--outFile', 'dist/kernels.wasm',
    '-O3', '--noAssert', '--runtime', 'stub', '--use', 'abort=', '--enable', 'simd,threads',
    '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536',
    '--noExportMemory',
  ]);
  if (error) {
    console.error(`esbuild.mjs: building dist/kernels.wasm failed: ${error.message}\n${stderr.toString()}`);
    process.exit(1);
  }
}

/** The sidebar webview runs in a browser frame. */
const browserBundles = [
  { entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js', platform: 'browser', format: 'iife', target: 'es2022' },
];

const contexts = await Promise.all([
  ...nodeBundles.map((b) => esbuild.context({ ...common, ...b })),
  ...browserBundles.map((b) => esbuild.context({ ...common, ...b })),
]);
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
  chmodSync('dist/cli.js', 0o755);
}
