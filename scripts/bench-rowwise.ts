// Benchmark: the row-wise / elementwise WebAssembly SIMD128 kernels (dist/kernels.wasm) vs their
// plain-TS twins (src/ml/layers.ts, src/ml/adamw.ts) on the seed model's shapes: vocab 10,000,
// C = 256, 4 layers, 8 heads, T = 128, B = 8 → N = B·T = 1024 rows, 5.75M parameters.
// One thread. Both sides run on the same Float32Array views of the kernels' memory.
//
//   npm run bench:rowwise          (builds first)
//
// ms per call = median of timed runs after warm-up (≥ 5 runs or ~0.3 s for the kernel; the TS
// twin gets ≥ 2 runs). "per step" = ms per call × calls in one training step of the seed model
// (forward + backward + optimizer: 9 layernorms, 4 attention / GELU blocks, 8 residual adds,
// one cross-entropy over [1024, 10000], one AdamW update and one gradient norm). Matmuls are not
// included (see bench:gemm). A benchmark reports; it never fails on a time.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { KERNEL_SCRATCH_BYTES, WASM_PAGE_BYTES, createKernelMemory, createKernels } from '../src/ml/kernels/wasmKernels';
import {
  attentionBackward, attentionForward, crossEntropyForwardBackward, geluBackward, geluForward,
  layernormBackward, layernormForward, residualForward,
} from '../src/ml/layers';
import { adamwUpdateRange, sumSquares } from '../src/ml/adamw';
import { parameterCount } from '../src/ml/paramLayout';

const V = 10000, C = 256, L = 4, NH = 8, T = 128, B = 8;
const N = B * T;
const P = parameterCount({ vocabSize: V, contextLength: T, dModel: C, nLayer: L, nHead: NH }); // tied embeddings: 5,752,320

// ---- memory: one bump allocation per tensor ------------------------------------------------
const sizes = {
  logits: N * V, logits0: N * V, losses: N, targets: N,
  x: N * C, y: N * C, mean: N, rstd: N, w: C, b: C, dx: N * C, dy: N * C, dw: C, db: C,
  h: N * 4 * C, hOut: N * 4 * C, dh: N * 4 * C, dhOut: N * 4 * C,
  qkv: N * 3 * C, att: B * NH * T * T, atty: N * C, dqkv: N * 3 * C, datty: N * C, attScratch: T * T,
  params: P, grads: P, m: P, v: P,
};
let top = KERNEL_SCRATCH_BYTES;
const offsets: Record<string, number> = {};
for (const [k, n] of Object.entries(sizes)) {
  offsets[k] = top;
  top = (top + n * 4 + 63) & ~63;
}
const pages = Math.ceil(top / WASM_PAGE_BYTES);
const memory = createKernelMemory(pages, pages);
const kernels = createKernels(readFileSync(join(__dirname, '..', 'dist', 'kernels.wasm')), memory, { ptr: 0, bytes: KERNEL_SCRATCH_BYTES });
type Name = keyof typeof sizes;
const f32 = (k: Name): Float32Array => new Float32Array(memory.buffer, offsets[k]!, sizes[k]);
const ptr = (k: Name): number => offsets[k]!;

let seed = 12345;
const rand = (): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 31 - 1;
};
const fill = (k: Name, f: () => number): void => {
  const a = f32(k);
  for (let i = 0; i < a.length; i++) a[i] = f();
};
fill('logits0', () => 4 * rand());
const targets = new Int32Array(memory.buffer, ptr('targets'), N);
for (let i = 0; i < N; i++) targets[i] = (i * 7919) % V;
for (const k of ['x', 'w', 'b', 'dy', 'dx', 'dw', 'db', 'h', 'dhOut', 'dh', 'dqkv', 'datty'] as const) fill(k, rand);
fill('qkv', () => 1.5 * rand());
fill('params', () => 0.02 * rand());
fill('grads', () => 1e-3 * rand());
fill('v', () => 1e-8 * Math.abs(rand()));
fill('m', () => 1e-4 * rand());
layernormForward(f32('y'), f32('mean'), f32('rstd'), f32('x'), f32('w'), f32('b'), N, C);
kernels.attentionForward(ptr('atty'), ptr('att'), ptr('qkv'), B, T, C, NH);

// ---- timing ------------------------------------------------------------------------------------
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median ms of fn (prep runs untimed before each call). */
function timeMs(fn: () => void, prep: (() => void) | null, minRuns: number, budgetMs: number): number {
  prep?.();
  fn(); // warm-up (tier-up)
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || (performance.now() - start < budgetMs && times.length < 200)) {
    prep?.();
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

interface Row {
  name: string;
  shape: string;
  perStep: number;
  wasm: () => void;
  ts: () => void;
  prep?: () => void;
}

const h = { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
const step = 10;
const layout = [{ name: 'all', shape: [P], offset: 0, size: P, decay: true }];
const restoreLogits = (): void => f32('logits').set(f32('logits0'));

const rows: Row[] = [
  {
    name: 'crossEntropy fwd+bwd', shape: `[${N}, ${V}]`, perStep: 1, prep: restoreLogits,
    wasm: () => kernels.crossEntropyForwardBackward(ptr('logits'), ptr('losses'), ptr('targets'), N, V, 1 / N),
    ts: () => crossEntropyForwardBackward(f32('logits'), f32('losses'), targets, N, V, 1 / N),
  },
  {
    name: 'layernorm fwd', shape: `[${N}, ${C}]`, perStep: 2 * L + 1,
    wasm: () => kernels.layernormForward(ptr('y'), ptr('mean'), ptr('rstd'), ptr('x'), ptr('w'), ptr('b'), N, C),
    ts: () => layernormForward(f32('y'), f32('mean'), f32('rstd'), f32('x'), f32('w'), f32('b'), N, C),
  },
  {
    name: 'layernorm bwd', shape: `[${N}, ${C}]`, perStep: 2 * L + 1,
    wasm: () => kernels.layernormBackward(ptr('dx'), ptr('dw'), ptr('db'), ptr('dy'), ptr('x'), ptr('w'), ptr('mean'), ptr('rstd'), N, C),
    ts: () => layernormBackward(f32('dx'), f32('dw'), f32('db'), f32('dy'), f32('x'), f32('w'), f32('mean'), f32('rstd'), N, C),
  },
  {
    name: 'gelu fwd', shape: `[${N}, ${4 * C}]`, perStep: L,
    wasm: () => kernels.geluForward(ptr('hOut'), ptr('h'), N * 4 * C),
    ts: () => geluForward(f32('hOut'), f32('h'), N * 4 * C),
  },
  {
    name: 'gelu bwd', shape: `[${N}, ${4 * C}]`, perStep: L,
    wasm: () => kernels.geluBackward(ptr('dh'), ptr('h'), ptr('dhOut'), N * 4 * C),
    ts: () => geluBackward(f32('dh'), f32('h'), f32('dhOut'), N * 4 * C),
  },
  {
    name: 'attention fwd', shape: `B${B} T${T} C${C} NH${NH}`, perStep: L,
    wasm: () => kernels.attentionForward(ptr('atty'), ptr('att'), ptr('qkv'), B, T, C, NH),
    ts: () => attentionForward(f32('atty'), f32('att'), f32('qkv'), B, T, C, NH),
  },
  {
    name: 'attention bwd', shape: `B${B} T${T} C${C} NH${NH}`, perStep: L,
    wasm: () => kernels.attentionBackward(ptr('dqkv'), ptr('attScratch'), ptr('datty'), ptr('qkv'), ptr('att'), B, T, C, NH),
    ts: () => attentionBackward(f32('dqkv'), f32('attScratch'), f32('datty'), f32('qkv'), f32('att'), B, T, C, NH),
  },
  {
    name: 'residual add', shape: `[${N}, ${C}]`, perStep: 2 * L,
    wasm: () => kernels.add(ptr('y'), ptr('x'), ptr('dx'), N * C),
    ts: () => residualForward(f32('y'), f32('x'), f32('dx'), N * C),
  },
  {
    name: 'adamw update', shape: `${(P / 1e6).toFixed(2)}M params`, perStep: 1,
    wasm: () => kernels.adamwUpdate(
      ptr('params'), ptr('grads'), ptr('m'), ptr('v'), P,
      h.beta1, h.beta2, h.eps, 1 - h.lr * h.weightDecay, h.lr / (1 - h.beta1 ** step), Math.sqrt(1 - h.beta2 ** step), 0.9,
    ),
    ts: () => adamwUpdateRange(f32('params'), f32('grads'), f32('m'), f32('v'), layout, h, step, 0, P, 0.9),
  },
  {
    name: 'sumSquares (grad norm)', shape: `${(P / 1e6).toFixed(2)}M params`, perStep: 1,
    wasm: () => kernels.sumSquares(ptr('grads'), P),
    ts: () => sumSquares(f32('grads')),
  },
];

// ---- run ---------------------------------------------------------------------------------------
const pad = (s: string, n: number): string => s.padEnd(n);
const num = (x: number, n = 9): string => x.toFixed(x < 1 ? 3 : x < 100 ? 2 : 1).padStart(n);

console.log(`bench:rowwise — Node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores), 1 thread`);
console.log(`seed model: V=${V} C=${C} L=${L} NH=${NH} T=${T} B=${B} (N=${N}), ${P.toLocaleString('en-US')} params`);
console.log('');
console.log(`${pad('op', 24)} ${pad('shape', 20)} ${'calls'.padStart(5)} | ${'wasm ms'.padStart(9)} ${'TS ms'.padStart(9)} ${'speedup'.padStart(8)} | ${'wasm/step'.padStart(9)} ${'TS/step'.padStart(9)}`);
console.log('-'.repeat(104));
let totalW = 0, totalT = 0;
for (const r of rows) {
  const w = timeMs(r.wasm, r.prep ?? null, 5, 300);
  const t = timeMs(r.ts, r.prep ?? null, 2, 600);
  totalW += w * r.perStep;
  totalT += t * r.perStep;
  console.log(
    `${pad(r.name, 24)} ${pad(r.shape, 20)} ${String(r.perStep).padStart(5)} | ${num(w)} ${num(t)} ${num(t / w, 7)}x | ${num(w * r.perStep)} ${num(t * r.perStep)}`,
  );
}
console.log('-'.repeat(104));
console.log(`per training step, these ops (1 thread): wasm ${totalW.toFixed(1)} ms vs TS twin ${totalT.toFixed(1)} ms (${(totalT / totalW).toFixed(1)}x)`);
