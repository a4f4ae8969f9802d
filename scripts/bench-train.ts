// npm run bench:train [-- <folder>] [--steps N] [--preset seed]
//
// Trains the preset (default: seed) for a fixed number of steps on a folder (default: this
// repository) with 1 thread and with all cores, through the real CLI in a child process, and — if
// Debian's PyTorch with OpenBLAS is present — the same model, batch and optimizer in PyTorch, in
// the same run, on the same tokens. Prints a table; the last line is the ratio ours/PyTorch.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { isPresetName, PRESETS } from '../src/ml/config';
import { parameterCount } from '../src/ml/paramLayout';

const root = path.join(__dirname, '..');
const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: { steps: { type: 'string' }, preset: { type: 'string' } },
  allowPositionals: true,
});
const folder = path.resolve(positionals[0] ?? root);
const steps = Number(values.steps ?? 24);
const presetName = values.preset ?? 'seed';
if (!isPresetName(presetName)) throw new Error(`unknown preset ${presetName}`);
const preset = PRESETS[presetName];
const cores = os.availableParallelism();
const WARMUP = 4; // steps excluded from the timing (thread start-up, first packing, JIT)

interface Row { name: string; tokensPerSec: number; msPerStep: number; rssMb: number; threads: number }

function runOurs(threads: number, out: string): Row & { vocab: number; context: number; batch: number; params: number; dataFile: string } {
  const r = spawnSync(process.execPath, [
    path.join(root, 'dist', 'cli.js'), 'train', folder, '--preset', presetName, '--max-steps', String(steps + WARMUP),
    '--threads', String(threads), '--checkpoint-every', '100000', '--out', out, '--json',
  ], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`workspace-lm train failed: ${r.stderr}`);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
  const model = events.find((e) => e.event === 'model')!;
  const stepEvents = events.filter((e) => e.event === 'step');
  const a = stepEvents[WARMUP - 1]!, b = stepEvents[stepEvents.length - 1]!;
  const B = model.batch as number, T = model.context as number;
  const dt = (b.elapsed_s as number) - (a.elapsed_s as number);
  const n = (b.step as number) - (a.step as number);
  const done = events.find((e) => e.event === 'done')!;
  return {
    name: `workspace-lm, ${threads} thread${threads > 1 ? 's' : ''}`, threads,
    tokensPerSec: (n * B * T) / dt, msPerStep: (1000 * dt) / n, rssMb: done.peak_rss_mb as number,
    vocab: model.vocab_size as number, context: T, batch: B, params: model.params as number,
    dataFile: path.join(out, 'data', 'train.bin'),
  };
}

function torchPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0) return py;
  }
  return null;
}

function runTorch(py: string, threads: number, o: { vocab: number; context: number; batch: number; dataFile: string }): Row | { error: string } {
  // Tuned the way performance.md measured the peer: passive OpenMP waits, and without the
  // OPENBLAS_* overrides this machine sets for old OpenBLAS builds — for this child only.
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const m = preset.model;
  const r = spawnSync(py, [
    path.join(root, 'scripts', 'bench_torch.py'), '--data', o.dataFile, '--vocab', String(o.vocab), '--n-embd', String(m.dModel),
    '--n-layer', String(m.nLayer), '--n-head', String(m.nHead), '--context', String(o.context), '--batch', String(o.batch),
    '--steps', String(steps), '--warmup', String(WARMUP), '--threads', String(threads),
  ], { encoding: 'utf8', env });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let j: Record<string, number | string>;
  try { j = JSON.parse(line); } catch { return { error: `bench_torch.py failed: ${r.stderr.trim().split('\n').pop()}` }; }
  if (typeof j.error === 'string') return { error: j.error };
  return { name: `PyTorch ${j.torch}, ${threads} thread${threads > 1 ? 's' : ''}`, threads, tokensPerSec: j.tokens_per_s as number, msPerStep: j.ms_per_step as number, rssMb: j.peak_rss_mb as number };
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-bench-'));
try {
  console.log(`bench:train — preset ${presetName} on ${folder}; ${steps} timed steps after ${WARMUP} warm-up; ${cores} cores\n`);
  const one = runOurs(1, path.join(tmp, 't1'));
  const all = cores > 1 ? runOurs(cores, path.join(tmp, `t${cores}`)) : null;
  // Training FLOPs per token: 6 per parameter (forward + backward) plus causal attention
  // (q·k and att·v, forward and backward: 6 · L · T · C on average over positions).
  const flopsPerToken = 6 * parameterCount({ ...preset.model, vocabSize: one.vocab }) + 6 * preset.model.nLayer * one.context * preset.model.dModel;
  const rows: Row[] = [one, ...(all ? [all] : [])];
  const py = torchPython();
  let torchNote = '';
  let bestTorch: Row | null = null;
  if (py === null) {
    torchNote = 'PyTorch: not installed (apt-get install python3-torch libopenblas0-pthread) — no peer in this run';
  } else {
    for (const t of [1, 2].filter((t) => t <= cores)) {
      const r = runTorch(py, t, one);
      if ('error' in r) { torchNote = `PyTorch: ${r.error}`; break; }
      rows.push(r);
      if (bestTorch === null || r.tokensPerSec > bestTorch.tokensPerSec) bestTorch = r;
    }
  }
  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (x: number, d = 0): string => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  console.log(`${pad('run', 34)}${'tokens/s'.padStart(10)}${'ms/step'.padStart(10)}${'GFLOPS'.padStart(9)}${'peak RSS MB'.padStart(13)}${'scaling'.padStart(9)}`);
  for (const r of rows) {
    const base = r.name.startsWith('workspace') ? one : rows.find((x) => !x.name.startsWith('workspace') && x.threads === 1);
    const scaling = base && r.threads > 1 ? `${num(r.tokensPerSec / base.tokensPerSec, 2)}x` : '';
    console.log(`${pad(r.name, 34)}${num(r.tokensPerSec).padStart(10)}${num(r.msPerStep, 1).padStart(10)}${num((r.tokensPerSec * flopsPerToken) / 1e9, 1).padStart(9)}${num(r.rssMb).padStart(13)}${scaling.padStart(9)}`);
  }
  if (all) console.log(`\nscaling efficiency 1 → ${cores} threads: ${num((100 * all.tokensPerSec) / (cores * one.tokensPerSec), 0)}%`);
  console.log(`params ${num(one.params)}, batch ${one.batch} x ${one.context}, ${num(flopsPerToken / 1e6, 1)} MFLOP per token`);
  const best = all ?? one;
  const jobTokens = 2_881_000; // the seed job: 288,100 tokens x 10 epochs
  console.log(`the seed job (${num(jobTokens)} tokens) at ${num(best.tokensPerSec)} tokens/s: ${num(jobTokens / best.tokensPerSec / 60, 1)} min`);
  if (torchNote) console.log(torchNote);
  if (bestTorch !== null) console.log(`ratio ours (${best.threads} threads) / PyTorch (best, ${bestTorch.threads} thread${bestTorch.threads > 1 ? 's' : ''}): ${num(best.tokensPerSec / bestTorch.tokensPerSec, 2)}`);
  else console.log(`tokens/s ours (${best.threads} threads): ${num(best.tokensPerSec)}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
