// npm run bench:complete [-- --checkpoint DIR] [--requests N]
//
// Completion latency of the language server's engine on one core: N single-line requests (≤ 32
// new tokens) at random cut points in the run's held-out files, cold (empty KV cache) and
// typing-continuation (the previous keystroke's prompt is cached). Without --checkpoint it first
// trains the seed preset briefly on this repository. Two rows each: the model as served (the GPT
// mixed with its n-gram and copy models) and the GPT alone. If Debian's PyTorch is present, the
// GPT alone's exact work (same windows, same prefilled and decoded token counts) is replayed in
// PyTorch with a KV cache, one thread, and the table shows both. Last line: the ratio
// ours/PyTorch at p95 (GPT alone, like for like).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Rng } from '../src/ml/rng';
import { DEFAULT_COMPLETION_SETTINGS } from '../src/ml/config';
import { CompletionEngine, CompletionResult } from '../src/completion/engine';
import type { ServedModelMode } from '../src/ml/servedModel';
import { loadServingModel } from '../src/completion/servingModel';

const root = path.join(__dirname, '..');
const { values } = parseArgs({ args: process.argv.slice(2), options: { checkpoint: { type: 'string' }, requests: { type: 'string' }, folder: { type: 'string' } } });
const N = Number(values.requests ?? 200);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-bench-complete-'));

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function main(): Promise<void> {
  let runDir = values.checkpoint;
  const folder = path.resolve(values.folder ?? root);
  if (runDir === undefined) {
    runDir = path.join(tmp, 'run');
    console.log(`training a seed-preset checkpoint on ${folder} (60 steps)…`);
    const r = spawnSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'train', folder, '--preset', 'seed', '--max-steps', '60', '--out', runDir, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(r.stderr);
  }
  const meta = JSON.parse(readFileSync(path.join(runDir, 'data', 'meta.json'), 'utf8')) as { val_files: string[] };
  const files = meta.val_files.map((f) => readFileSync(path.join(folder, f), 'utf8')).filter((t) => t.length > 200 && !t.includes('\u0000'));
  if (files.length === 0) throw new Error('no held-out files to cut');
  const served = await loadServingModel(runDir);
  const settings = { ...DEFAULT_COMPLETION_SETTINGS, mode: 'line' as const, maxTokens: 32, debounceMs: 0, minMeanLogProb: -Infinity };
  const rng = new Rng(42);
  const cuts = Array.from({ length: N }, () => {
    const text = files[rng.int(files.length)]!;
    return { text, offset: 1 + rng.int(text.length - 2) };
  });
  const never = (): boolean => false;

  const measure = async (mode: ServedModelMode) => {
    // Caches of finished suggestions off: every request really decodes; only the KV cache differs.
    const engine = new CompletionEngine(() => served, { ...settings, model: mode }, { reuseSuggestions: false, useCache: false, trace: true });
    // Warm-up (JIT, first allocations).
    for (const c of cuts.slice(0, 5)) await engine.complete({ uri: 'w', text: c.text, offset: c.offset }, never);
    const cold: number[] = [];
    const coldTrace: NonNullable<CompletionResult['trace']>[] = [];
    const coldTokens: number[] = [];
    for (const c of cuts) {
      // Cold: nothing cached, in the GPT nor in the n-gram and copy models (they replay the file).
      served.session.reset();
      served.decoder(mode)?.forgetHistory();
      const t0 = performance.now();
      const r = await engine.complete({ uri: 'cold', text: c.text, offset: c.offset }, never);
      cold.push(performance.now() - t0);
      coldTrace.push(r.trace!);
      coldTokens.push(r.tokens);
    }
    const cont: number[] = [];
    const contTrace: NonNullable<CompletionResult['trace']>[] = [];
    const prefilled: number[] = [];
    for (const c of cuts) {
      served.session.reset();
      await engine.complete({ uri: 'typing', text: c.text, offset: c.offset }, never);
      // The user types the next character: it is inserted at the cursor, the text after the
      // cursor stays as it was (so a FIM prompt keeps its suffix, and its KV cache).
      const typed = c.text.slice(0, c.offset + 1) + c.text.slice(c.offset);
      const t0 = performance.now();
      const r = await engine.complete({ uri: 'typing', text: typed, offset: c.offset + 1 }, never);
      cont.push(performance.now() - t0);
      contTrace.push(r.trace!);
      prefilled.push(r.prefilled);
    }
    return { cold, coldTrace, coldTokens, cont, contTrace, prefilled };
  };
  const full = served.counts !== undefined ? await measure('served') : null;
  const alone = await measure('gpt');

  const row = (name: string, xs: number[]): string =>
    `${name.padEnd(44)}${percentile(xs, 50).toFixed(1).padStart(8)}${percentile(xs, 95).toFixed(1).padStart(8)}${Math.max(...xs).toFixed(1).padStart(8)}`;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`\nbench:complete — ${N} requests, single-line, ≤ 32 new tokens, context ${served.model.cfg.contextLength}, ${(served.model.numParams / 1e6).toFixed(2)}M params, ${served.model.ops.name}`);
  console.log(`GPT alone: mean new tokens ${mean(alone.coldTokens).toFixed(1)}; mean prompt ${mean(alone.coldTrace.map((t) => t.window.length)).toFixed(0)} tokens cold, ${mean(alone.prefilled).toFixed(1)} prefilled when typing`);
  if (full === null) console.log(`no n-gram/copy models (${served.countsSkipped ?? '?'}): only the GPT is measured`);
  else console.log(`as served: mean new tokens ${mean(full.coldTokens).toFixed(1)} (its suggestions differ from the GPT's, so the work differs too)`);
  console.log(`\n${'latency (ms)'.padEnd(44)}${'p50'.padStart(8)}${'p95'.padStart(8)}${'max'.padStart(8)}`);
  if (full !== null) {
    console.log(row('workspace-lm as served (GPT+n-gram+copy), cold', full.cold));
    console.log(row('workspace-lm as served, typing-continuation', full.cont));
  }
  console.log(row('workspace-lm GPT alone, cold', alone.cold));
  console.log(row('workspace-lm GPT alone, typing-continuation', alone.cont));
  const cold = alone.cold, cont = alone.cont, coldTrace = alone.coldTrace, contTrace = alone.contTrace;

  const py = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);
  if (py === undefined) {
    console.log('PyTorch: not installed (apt-get install python3-torch libopenblas0-pthread) — no peer in this run');
    console.log(`p95 typing-continuation: ${percentile(cont, 95).toFixed(1)} ms`);
    return;
  }
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const replay = (trace: NonNullable<CompletionResult['trace']>[]): number[] => {
    const f = path.join(tmp, 'trace.json');
    writeFileSync(f, JSON.stringify(trace));
    const r = spawnSync(py, [path.join(root, 'scripts', 'bench_torch_complete.py'), '--checkpoint', served.dir, '--trace', f], { encoding: 'utf8', env, maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`bench_torch_complete.py: ${r.stderr}`);
    return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number[] }).ms;
  };
  const tCold = replay(coldTrace);
  const tCont = replay(contTrace);
  console.log(row('PyTorch (same work, KV cache), cold', tCold));
  console.log(row('PyTorch (same work, KV cache), typing', tCont));
  console.log(`\nratio ours (GPT alone) / PyTorch at p95: cold ${(percentile(cold, 95) / percentile(tCold, 95)).toFixed(2)}, typing ${(percentile(cont, 95) / percentile(tCont, 95)).toFixed(2)}`);
}

main().finally(() => rmSync(tmp, { recursive: true, force: true }));
