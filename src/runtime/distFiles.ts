// Files built next to the bundles: dist/kernels.wasm and dist/trainWorker.js. Found next to the
// running bundle (dist/cli.js, dist/server.js) or, when running from sources (tests via tsx), in
// the repository's dist/ after `node esbuild.mjs`.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export function distPath(name: string): string | null {
  for (const p of [path.join(__dirname, name), path.join(__dirname, '..', '..', 'dist', name)]) {
    if (existsSync(p)) return p;
  }
  return null;
}

export function readKernelWasm(): Uint8Array | null {
  const p = distPath('kernels.wasm');
  return p === null ? null : readFileSync(p);
}
