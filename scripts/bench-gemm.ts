// Benchmark: the WebAssembly SIMD128 matmul (dist/kernels.wasm) vs its plain-TS twin
// (src/ml/kernels/reference.ts, float64 accumulator) and vs a naive JS i-k-j loop over
// Float32Array, on the seed model's shapes: B·T = 8·128 = 1024 rows, C = 256, 3C = 768,
// 4C = 1024, vocab 10,000 — forward (A·B), input gradients (A·Bᵀ) and weight gradients
// (Aᵀ·B). One thread. If python3 + numpy are present, single-threaded OpenBLAS sgemm on
// the same shapes is shown as a native (AVX-512) peer.
//
//   npm run bench:gemm          (builds first)
//
// GFLOPS = 2·M·N·K / time. Fast kernel: median of ≥ 5 timed runs after warm-up (V8 tiers
// wasm up to TurboFan after the first calls). The slow baselines run on a subset of rows
// (~50 MFLOP per run) — they are rates, so the subset does not bias them.
// A benchmark reports; it never fails on a time.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import {
  KERNEL_SCRATCH_BYTES, MatmulFlags, createKernelMemory, createKernels, WASM_PAGE_BYTES,
} from '../src/ml/kernels/wasmKernels';
import { matmulRef } from '../src/ml/kernels/reference';

const { TRANS_A, TRANS_B } = MatmulFlags;
const BT = 1024, C = 256, V = 10000;

interface Shape {
  name: string;
  M: number;
  N: number;
  K: number;
  flags: number;
  /** Part of the geometric mean (the seed model's Linear layers). */
  main: boolean;
}

const shapes: Shape[] = [
  // forward: y[BT, out] = x[BT, in] · W[in, out]
  { name: 'fwd qkv', M: BT, N: 3 * C, K: C, flags: 0, main: true },
  { name: 'fwd attn proj', M: BT, N: C, K: C, flags: 0, main: true },
  { name: 'fwd mlp fc', M: BT, N: 4 * C, K: C, flags: 0, main: true },
  { name: 'fwd mlp proj', M: BT, N: C, K: 4 * C, flags: 0, main: true },
  { name: 'fwd logits x·wteᵀ', M: BT, N: V, K: C, flags: TRANS_B, main: true },
  // input gradients: dx[BT, in] = dy[BT, out] · W[in, out]ᵀ
  { name: 'dx qkv', M: BT, N: C, K: 3 * C, flags: TRANS_B, main: true },
  { name: 'dx attn proj', M: BT, N: C, K: C, flags: TRANS_B, main: true },
  { name: 'dx mlp fc', M: BT, N: C, K: 4 * C, flags: TRANS_B, main: true },
  { name: 'dx mlp proj', M: BT, N: 4 * C, K: C, flags: TRANS_B, main: true },
  { name: 'dx logits dl·wte', M: BT, N: C, K: V, flags: 0, main: true },
  // weight gradients: dW[in, out] = x[BT, in]ᵀ · dy[BT, out]
  { name: 'dW qkv', M: C, N: 3 * C, K: BT, flags: TRANS_A, main: true },
  { name: 'dW attn proj', M: C, N: C, K: BT, flags: TRANS_A, main: true },
  { name: 'dW mlp fc', M: C, N: 4 * C, K: BT, flags: TRANS_A, main: true },
  { name: 'dW mlp proj', M: 4 * C, N: C, K: BT, flags: TRANS_A, main: true },
  { name: 'dwte dlᵀ·x', M: V, N: C, K: BT, flags: TRANS_A, main: true },
  // one attention head (T = 128, hs = 32): small, shown for reference only (not in the mean)
  { name: 'att q·kᵀ (1 head)', M: 128, N: 128, K: 32, flags: TRANS_B, main: false },
  { name: 'att a·v (1 head)', M: 128, N: 32, K: 128, flags: 0, main: false },
  // inference, one token with a KV cache (M = 1: the streaming path, no packing)
  { name: 'tok qkv', M: 1, N: 3 * C, K: C, flags: 0, main: false },
  { name: 'tok mlp proj', M: 1, N: C, K: 4 * C, flags: 0, main: false },
  { name: 'tok logits x·wteᵀ', M: 1, N: V, K: C, flags: TRANS_B, main: false },
];

const kind = (f: number): string => ((f & TRANS_A) !== 0 ? 'Aᵀ·B' : (f & TRANS_B) !== 0 ? 'A·Bᵀ' : 'A·B');

// ---- memory: scratch, then A, B, C for the largest shape ----------------------------------
const maxBytes = Math.max(...shapes.map((s) => (s.M * s.K + s.K * s.N + s.M * s.N) * 4 + 3 * 64));
const pages = Math.ceil((KERNEL_SCRATCH_BYTES + maxBytes) / WASM_PAGE_BYTES);
const memory = createKernelMemory(pages, pages);
const kernels = createKernels(readFileSync(join(__dirname, '..', 'dist', 'kernels.wasm')), memory, {
  ptr: 0,
  bytes: KERNEL_SCRATCH_BYTES,
});
const heap = new Float32Array(memory.buffer);
for (let i = KERNEL_SCRATCH_BYTES / 4; i < heap.length; i++) heap[i] = Math.random() - 0.5;
const align64 = (x: number): number => (x + 63) & ~63;

// ---- baselines ----------------------------------------------------------------------------

/** The obvious loop a JS programmer writes: i-k-j over Float32Array, float32 accumulation in C. */
function naiveIkj(Cm: Float32Array, A: Float32Array, B: Float32Array, M: number, N: number, K: number, flags: number): void {
  const tA = (flags & TRANS_A) !== 0, tB = (flags & TRANS_B) !== 0;
  Cm.fill(0, 0, M * N);
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const a = tA ? A[k * M + i]! : A[i * K + k]!;
      const row = i * N;
      if (tB) for (let j = 0; j < N; j++) Cm[row + j] += a * B[j * K + k]!;
      else {
        const bk = k * N;
        for (let j = 0; j < N; j++) Cm[row + j] += a * B[bk + j]!;
      }
    }
  }
}

function timeMs(f: () => void): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** GFLOPS of a slow baseline on a row subset of ~50 MFLOP (warm-up run on a smaller subset). */
function slowGflops(s: Shape, fn: 'twin' | 'naive'): number {
  const rows = Math.max(1, Math.min(s.M, Math.round(50e6 / (2 * s.N * s.K))));
  // Inputs for M' = rows: for Aᵀ the stored A is [K, M]; use a dense [K, rows] copy.
  const A = new Float32Array(rows * s.K).map(() => Math.random() - 0.5);
  const B = heap.subarray(KERNEL_SCRATCH_BYTES / 4, KERNEL_SCRATCH_BYTES / 4 + s.K * s.N);
  const Cm = new Float32Array(rows * s.N);
  const run = (m: number): void => {
    if (fn === 'twin') matmulRef(Cm, A, B, null, m, s.N, s.K, s.flags, { lda: (s.flags & TRANS_A) !== 0 ? rows : s.K });
    else naiveIkj(Cm, A, B, m, s.N, s.K, s.flags);
  };
  run(Math.max(1, rows >> 3));
  const ms = timeMs(() => run(rows));
  return (2 * rows * s.N * s.K) / ms / 1e6;
}

function fastGflops(s: Shape): number {
  const a = KERNEL_SCRATCH_BYTES;
  const b = align64(a + s.M * s.K * 4);
  const c = align64(b + s.K * s.N * 4);
  const call = (): void => kernels.matmul(c, a, b, 0, s.M, s.N, s.K, s.flags);
  const flop = 2 * s.M * s.N * s.K;
  for (let i = 0; i < 3; i++) call(); // tier-up to TurboFan
  const times: number[] = [];
  const reps = Math.max(5, Math.min(200, Math.round(2e9 / flop)));
  for (let i = 0; i < reps; i++) times.push(timeMs(call));
  return flop / median(times) / 1e6;
}

/** Single-threaded OpenBLAS sgemm via numpy, if available: GFLOPS per shape or null. */
function numpyGflops(list: Shape[]): Array<number | null> | null {
  const py = `
import json, sys, time
import numpy as np
out = []
for M, N, K, f in json.loads(sys.argv[1]):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((K, M) if f & 1 else (M, K), dtype=np.float32)
    b = rng.standard_normal((N, K) if f & 2 else (K, N), dtype=np.float32)
    A = a.T if f & 1 else a
    B = b.T if f & 2 else b
    c = np.empty((M, N), dtype=np.float32)
    for _ in range(3): np.matmul(A, B, out=c)
    ts = []
    reps = max(5, min(200, round(2e9 / (2 * M * N * K))))
    for _ in range(reps):
        t = time.perf_counter(); np.matmul(A, B, out=c); ts.append(time.perf_counter() - t)
    ts.sort()
    out.append(2 * M * N * K / ts[len(ts) // 2] / 1e9)
print(json.dumps(out))
`;
  // Tuned peer env (docs/performance.md), for this command only: 1 thread, and without the
  // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides this machine sets for old builds.
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync('python3', ['-c', py, JSON.stringify(list.map((s) => [s.M, s.N, s.K, s.flags]))], {
    env,
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout.trim()) as number[];
  } catch {
    return null;
  }
}

// ---- run -------------------------------------------------------------------------------------
const geomean = (xs: number[]): number => Math.exp(xs.reduce((acc, x) => acc + Math.log(x), 0) / xs.length);
const pad = (s: string, n: number): string => s.padEnd(n);
const num = (x: number | null | undefined, n = 7): string => (x == null ? '—' : x.toFixed(x < 10 ? 2 : 1)).padStart(n);

console.log(`bench:gemm — Node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores), 1 thread`);
console.log('reference ceiling (docs/performance.md): SIMD128 peak ~66 GFLOPS/core, packed 4x8 kernel ~62');
const peer = numpyGflops(shapes);
console.log(peer === null ? 'numpy/OpenBLAS peer: not available (python3 + numpy missing or failed)' : 'peer: numpy → OpenBLAS sgemm, 1 thread, tuned env');
console.log('');
console.log(`${pad('shape', 20)} ${pad('op', 5)} ${'M'.padStart(6)} ${'N'.padStart(6)} ${'K'.padStart(6)} | ${'wasm'.padStart(7)} ${'twin'.padStart(7)} ${'naive'.padStart(7)} ${'numpy'.padStart(7)} | ${'wasm/naive'.padStart(10)} ${'wasm/numpy'.padStart(10)}`);
console.log('-'.repeat(112));
const fast: number[] = [], twin: number[] = [], naive: number[] = [], np: number[] = [];
shapes.forEach((s, i) => {
  const f = fastGflops(s);
  const t = slowGflops(s, 'twin');
  const n = slowGflops(s, 'naive');
  const p = peer?.[i] ?? null;
  if (s.main) {
    fast.push(f);
    twin.push(t);
    naive.push(n);
    if (p !== null) np.push(p);
  }
  console.log(
    `${pad(s.name + (s.main ? '' : ' *'), 20)} ${pad(kind(s.flags), 5)} ${String(s.M).padStart(6)} ${String(s.N).padStart(6)} ${String(s.K).padStart(6)} | ` +
      `${num(f)} ${num(t)} ${num(n)} ${num(p)} | ${num(f / n, 9)}x ${p === null ? '—'.padStart(10) : num(f / p, 9) + 'x'}`,
  );
});
console.log('-'.repeat(112));
console.log('GFLOPS; * = not in the geometric mean. twin/naive measured on a row subset (rates).');
const gPeer = np.length === fast.length ? ` | numpy/OpenBLAS ${geomean(np).toFixed(1)} (wasm = ${((100 * geomean(fast)) / geomean(np)).toFixed(0)}%)` : '';
console.log(
  `geomean GFLOPS over ${fast.length} seed-model shapes: wasm ${geomean(fast).toFixed(1)} | twin ${geomean(twin).toFixed(2)} | ` +
    `naive ${geomean(naive).toFixed(2)} | wasm/naive ${(geomean(fast) / geomean(naive)).toFixed(1)}x${gPeer}`,
);
