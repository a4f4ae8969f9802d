// Row-wise / elementwise WebAssembly kernels (dist/kernels.wasm, built by `node esbuild.mjs`)
// against their plain-TS twins: crossEntropyForwardBackward, layernorm, GELU and attention from
// src/ml/layers.ts, adamwUpdateRange and sumSquares from src/ml/adamw.ts; exp, tanh and the
// causal softmax rows against src/ml/kernels/reference.ts.
//
// Tolerances. The twins compute in float64 (from the same float32 inputs) and round once; the
// kernels compute in float32. Each output gets tol = rel · mag, where mag is the scale the
// float32 rounding errors are proportional to: the sum of the absolute values of the terms that
// make the output (e.g. |norm·w| + |b| for layernorm), plus — where the function is steep — its
// sensitivity to a 1e-6 relative change of the input (that is what one float32 rounding of an
// intermediate costs there: e.g. GELU's far negative tail, exp(x − max) for x − max ≈ −80).
// rel is 1e-5 throughout. Set ROWWISE_VERBOSE=1 to print the worst error/tolerance ratio per case.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  KERNEL_SCRATCH_BYTES, createKernelMemory, createKernels, type Kernels, type WasmMemory,
} from '../src/ml/kernels/wasmKernels';
import {
  attentionBackward, attentionForward, crossEntropyForwardBackward, geluBackward, geluForward,
  layernormBackward, layernormForward, scaleRows,
} from '../src/ml/layers';
import { adamwUpdateRange, sumSquares } from '../src/ml/adamw';
import { PRESETS, toHfConfig } from '../src/ml/config';
import { LAYERNORM_EPS } from '../src/ml/constants';
import { causalSoftmaxBackwardRowsRef, causalSoftmaxRowsRef, expRef, tanhRef } from '../src/ml/kernels/reference';

const WASM_PATH = join(__dirname, '..', 'dist', 'kernels.wasm');
const VERBOSE = process.env.ROWWISE_VERBOSE === '1';
const REL = 1e-5;

// ---- fixtures --------------------------------------------------------------------------

/** mulberry32: tiny deterministic PRNG, uniform in [-1, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

/** Bump allocator of views in the kernels' memory (64-byte aligned; never grows the memory). */
class Arena {
  private top: number;
  constructor(private readonly memory: WasmMemory, private readonly base: number) {
    this.top = base;
  }
  reset(): void {
    this.top = this.base;
  }
  private bytes(n: number): number {
    const at = this.top;
    const need = at + n * 4;
    if (need > this.memory.buffer.byteLength) throw new RangeError(`test arena exhausted (${need} bytes)`);
    this.top = (need + 63) & ~63;
    return at;
  }
  f32(n: number, fill?: (i: number) => number): Float32Array {
    const v = new Float32Array(this.memory.buffer, this.bytes(n), n);
    if (fill !== undefined) for (let i = 0; i < n; i++) v[i] = fill(i);
    return v;
  }
  i32(n: number, fill: (i: number) => number): Int32Array {
    const v = new Int32Array(this.memory.buffer, this.bytes(n), n);
    for (let i = 0; i < n; i++) v[i] = fill(i);
    return v;
  }
  /** A view with the given contents at a given misalignment (in floats) from 64 bytes. */
  f32At(values: ArrayLike<number>, misalign: number): Float32Array {
    const whole = this.f32(values.length + misalign);
    const v = whole.subarray(misalign);
    v.set(values);
    return v;
  }
}

let kernels: Kernels;
let arena: Arena;
/** The kernels take byte offsets into their memory; the arena's views live there. */
const ptr = (v: Float32Array | Int32Array): number => v.byteOffset;

before(() => {
  const memory = createKernelMemory(1024, 1024); // 64 MiB
  kernels = createKernels(readFileSync(WASM_PATH), memory, { ptr: 0, bytes: KERNEL_SCRATCH_BYTES });
  arena = new Arena(memory, KERNEL_SCRATCH_BYTES);
});

/**
 * Asserts |got − want| ≤ REL·mag (+ abs) elementwise; NaN anywhere fails. Returns the worst
 * ratio error/tolerance (printed with ROWWISE_VERBOSE=1).
 */
function expectClose(
  label: string, got: ArrayLike<number>, want: ArrayLike<number>, mag: ArrayLike<number> | number, abs = 0, rel = REL,
): number {
  assert.equal(got.length, want.length, `${label}: length`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const m = typeof mag === 'number' ? mag : mag[i]!;
    const tol = rel * m + abs;
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol)) assert.fail(`${label}[${i}]: got ${got[i]}, twin ${want[i]}, |diff| ${err} > tol ${tol}`);
    if (tol > 0) worst = Math.max(worst, err / tol);
  }
  if (VERBOSE) console.log(`  ${label}: worst error/tol = ${worst.toFixed(3)}`);
  return worst;
}

const f64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);

// ---- exp / tanh ----------------------------------------------------------------------------

/** Relative error in units of float32's 2⁻²³ (ulp of 1). */
const ULP1 = 2 ** -23;

describe('exp and tanh (wasm, 4-lane polynomial) vs Math', () => {
  it('exp: relative error ≤ 2e-7 over [−87, 88.7]; 0 below, finite above, exp(0) = 1, NaN stays NaN', () => {
    arena.reset();
    const rand = rng(1);
    const xs: number[] = [0, -0, 1e-30, -1e-30, 1e-8, -1e-8, 0.5, -0.5, 1, -1, 10, -10, 80, -80, 88, 88.7, -86.9];
    for (let k = -125; k <= 127; k++) {
      // the reduction boundaries: x = (k ± 1/2)·ln2, where k switches
      for (const d of [-0.5, -0.4999, 0, 0.4999, 0.5]) {
        const x = (k + d) * Math.LN2;
        if (x > -86.99 && x <= 88.7) xs.push(x);
      }
    }
    for (let i = 0; i < 200_000; i++) xs.push(-86.99 + ((rand() + 1) / 2) * (88.7 + 86.99));
    for (let i = 0; i < 50_000; i++) xs.push(rand() * 2); // dense where softmax lives
    const x = arena.f32At(xs, 1);
    const out = arena.f32(xs.length);
    kernels.exp(ptr(out), ptr(x), x.length);
    const wants = new Float64Array(xs.length);
    expRef(wants, x);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) {
      const want = wants[i]!;
      const r = Math.abs(out[i]! - want) / want;
      if (!(r <= 2e-7)) assert.fail(`exp(${x[i]}) = ${out[i]}, Math.exp ${want}, rel ${r}`);
      worst = Math.max(worst, r);
    }
    if (VERBOSE) console.log(`  exp: max relative error ${worst.toExponential(3)} = ${(worst / ULP1).toFixed(2)} ulp(1)`);
    assert.equal(out[0], 1, 'exp(0) = 1 exactly');

    const special = [-87.4, -88, -100, -1e4, -1e30, -Infinity, 88.8, 100, 1e30, Infinity, NaN];
    const sx = arena.f32At(special, 3);
    const so = arena.f32(special.length);
    kernels.exp(ptr(so), ptr(sx), sx.length);
    for (let i = 0; i < 6; i++) assert.equal(so[i], 0, `exp(${special[i]}) flushes to 0`);
    for (let i = 6; i < 10; i++) assert.ok(Number.isFinite(so[i]!) && so[i]! > 3e38, `exp(${special[i]}) saturates at a finite ~3.3e38, got ${so[i]}`);
    assert.ok(Number.isNaN(so[10]!), 'exp(NaN) = NaN');
    // between −87.34 and −86.99 the result is 0 or the true tiny value
    const edge = arena.f32At([-87.3, -87.2, -87.1, -87.0], 0);
    const eo = arena.f32(4);
    kernels.exp(ptr(eo), ptr(edge), edge.length);
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(eo[i]! - Math.exp(edge[i]!)) <= 2e-38, `exp(${edge[i]}) = ${eo[i]}`);
  });

  it('tanh: relative error ≤ 3e-7 over ±[1e-20, 30]; odd, ±1 beyond, NaN stays NaN', () => {
    arena.reset();
    const rand = rng(2);
    const xs: number[] = [0, 1e-20, 1e-8, 1e-4, 0.1, 0.3, 0.6249, 0.625, 0.6251, 1, 2, 5, 9, 10, 20, 30];
    for (let i = 0; i < 100_000; i++) xs.push(rand() * 3);
    for (let i = 0; i < 50_000; i++) xs.push(rand() * 30);
    for (let i = 0; i < 10_000; i++) xs.push(Math.exp(-20 * (rand() + 1)) * Math.sign(rand())); // tiny
    const all = xs.concat(xs.map((v) => -v));
    const x = arena.f32At(all, 2);
    const out = arena.f32(all.length);
    kernels.tanh(ptr(out), ptr(x), x.length);
    const wants = new Float64Array(all.length);
    tanhRef(wants, x);
    let worst = 0;
    for (let i = 0; i < all.length; i++) {
      const want = wants[i]!;
      const r = want === 0 ? Math.abs(out[i]!) : Math.abs(out[i]! - want) / Math.abs(want);
      if (!(r <= 3e-7)) assert.fail(`tanh(${x[i]}) = ${out[i]}, Math.tanh ${want}, rel ${r}`);
      worst = Math.max(worst, r);
      assert.ok(out[i] === -out[(i + xs.length) % all.length]!, `tanh is odd at ${x[i]}`);
    }
    if (VERBOSE) console.log(`  tanh: max relative error ${worst.toExponential(3)} = ${(worst / ULP1).toFixed(2)} ulp(1)`);
    const special = [40, -40, 1e30, -1e30, Infinity, -Infinity, NaN];
    const so = arena.f32(special.length);
    kernels.tanh(ptr(so), ptr(arena.f32At(special, 1)), special.length);
    assert.deepEqual(Array.from(so.subarray(0, 6)), [1, -1, 1, -1, 1, -1]);
    assert.ok(Number.isNaN(so[6]!));
  });
});

// ---- cross-entropy ----------------------------------------------------------------------------

interface CeCase {
  N: number;
  V: number;
  /** logit generator (row, column) */
  logit: (n: number, v: number) => number;
  target: (n: number) => number;
  grad: boolean;
  seed: number;
}

function checkCrossEntropy(c: CeCase): void {
  const { N, V } = c;
  arena.reset();
  const label = `CE N=${N} V=${V} ${c.grad ? 'grad' : 'no grad'} seed=${c.seed}`;
  const logits = arena.f32(N * V, (i) => c.logit(Math.floor(i / V), i % V));
  const targets = arena.i32(N, c.target);
  const losses = arena.f32(N, () => 123); // overwritten
  let counted = 0;
  for (let n = 0; n < N; n++) if (targets[n]! >= 0) counted++;
  const gs = c.grad ? 1 / Math.max(1, counted) : null;
  const before = logits.slice();

  const wantLogits = before.slice();
  const wantLosses = new Float32Array(N);
  const wantTotal = crossEntropyForwardBackward(wantLogits, wantLosses, Array.from(targets), N, V, gs);
  const gotTotal = kernels.crossEntropyForwardBackward(ptr(logits), ptr(losses), ptr(targets), N, V, gs ?? NaN);

  // loss = log Σ exp(l − max) + max − l[target]: float32 errors are absolute in the log-sum
  // (relative error of Σ) plus the final rounding.
  const lossMag = Array.from(wantLosses, (l) => Math.abs(l) + 0.1);
  expectClose(`${label} losses`, losses, wantLosses, lossMag);
  for (let n = 0; n < N; n++) if (targets[n]! < 0) assert.equal(losses[n], 0, `${label}: ignored row ${n} loss`);
  assert.ok(Math.abs(gotTotal - wantTotal) <= REL * lossMag.reduce((a, b) => a + b, 0), `${label}: total ${gotTotal} vs ${wantTotal}`);

  if (!c.grad) {
    assert.deepEqual(logits, before, `${label}: logits must be untouched without a gradient`);
    return;
  }
  // gradient (p − onehot)·gs. Per entry: p's relative error comes from exp (~1e-7), Σ (~1e-7)
  // and x − max being a float32 (an absolute error up to |x − max|·2⁻²⁴ in the exponent); at
  // the target, p − 1 cancels: its error is relative to p·gs, not to |p − 1|·gs.
  const mag = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, before[n * V + v]!);
    for (let v = 0; v < V; v++) {
      const i = n * V + v;
      const p = Math.abs(wantLogits[i]!) + (v === targets[n] ? gs! : 0); // p·gs
      mag[i] = p * (1 + 0.1 * Math.abs(before[i]! - max)) + (v === targets[n] ? p : 0);
    }
  }
  expectClose(`${label} dlogits`, logits, wantLogits, mag, 1e-37);
  for (let n = 0; n < N; n++) {
    if (targets[n]! < 0) for (let v = 0; v < V; v++) assert.equal(logits[n * V + v], 0, `${label}: ignored row ${n} gradient`);
  }
}

describe('crossEntropyForwardBackward (wasm) vs layers.ts twin', () => {
  it('ragged V ∈ {1, 3, 67, 10000}, N ∈ {1, 3, 7}, with and without gradient, ignored rows', () => {
    let seed = 10;
    for (const V of [1, 3, 4, 5, 67, 10000]) {
      for (const N of [1, 3, 7]) {
        for (const grad of [true, false]) {
          const rand = rng(++seed);
          checkCrossEntropy({
            N, V, grad, seed,
            logit: () => 4 * rand(),
            // row 1 ignored (−1), row 4 ignored (−100); others span 0 .. V−1 (first and last)
            target: (n) => (n === 1 ? -1 : n === 4 ? -100 : n % 2 === 0 ? V - 1 : Math.floor(((rand() + 1) / 2) * V)),
          });
        }
      }
    }
  });

  it('extreme logits: ±80, −1e30 masked columns, a masked target, confident rows (p ≈ 1 at the target)', () => {
    for (const V of [3, 67, 10000]) {
      for (const grad of [true, false]) {
        const rand = rng(V + (grad ? 1 : 0));
        checkCrossEntropy({
          N: 6, V, grad, seed: V,
          logit: (n, v) => {
            switch (n) {
              case 0: return v % 3 === 0 ? 80 : v % 3 === 1 ? -80 : 80 * rand(); // ±80 and between
              case 1: return v % 2 === 0 ? -1e30 : 3 * rand(); // masked columns
              case 2: return v === 1 ? 30 : rand(); // confident: p(target=1) ≈ 1
              case 3: return v === 0 ? 0 : -1e30; // only column 0 alive; target masked below
              case 4: return -80 + rand(); // everything very negative
              default: return 1e-3 * rand(); // nearly uniform
            }
          },
          target: (n) => (n === 2 ? 1 : n === 3 ? V - 1 : n === 1 ? 1 : 0),
        });
      }
    }
  });

  it('seed shape N = 64 (of 1024) × V = 10000, model-like logits, gradScale 1/N', () => {
    const rand = rng(99);
    checkCrossEntropy({ N: 64, V: 10000, grad: true, seed: 99, logit: () => 6 * rand() * Math.abs(rand()), target: (n) => (n * 7919) % 10000 });
  });

  it('all rows ignored: returns 0, losses 0, gradient 0', () => {
    checkCrossEntropy({ N: 3, V: 67, grad: true, seed: 1, logit: (n, v) => n + v, target: () => -1 });
  });
});

// ---- row scaling (the mixture loss's gradient weights) ---------------------------------------------

describe('scaleRows (wasm) vs layers.ts twin', () => {
  it('ragged V ∈ {1, 3, 4, 5, 67, 4096}, N ∈ {1, 3, 7}, misaligned rows, scales 0, 1 and in between', () => {
    let seed = 500;
    for (const V of [1, 3, 4, 5, 67, 4096]) {
      for (const N of [1, 3, 7]) {
        for (const misalign of [0, 1, 3]) {
          const rand = rng(++seed);
          const values = Array.from({ length: N * V }, () => 10 * rand());
          const scaleValues = Array.from({ length: N }, (_, n) => (n === 0 ? 0 : n === 1 ? 1 : (rand() + 1) / 2));
          const x = arena.f32At(values, misalign);
          const scales = arena.f32At(scaleValues, misalign);
          const want = f64(x);
          scaleRows(want, Float32Array.from(scaleValues), N, V);
          kernels.scaleRows(ptr(x), ptr(scales), N, V);
          // One float32 product per element: within half an ulp of the float64 twin.
          expectClose(`scaleRows V=${V} N=${N} +${misalign}`, x, want, want.map(Math.abs), 0, 2 ** -24);
          for (let v = 0; v < V; v++) assert.ok(x[v] === 0, 'scale 0 zeroes its row');
        }
        arena.reset();
      }
    }
  });
});

// ---- layernorm ----------------------------------------------------------------------------------

describe('layernorm (wasm) vs layers.ts twin', () => {
  it('one epsilon: the exported config.json and the PyTorch twin use LAYERNORM_EPS (the kernel and the twin import it)', () => {
    assert.equal(toHfConfig(PRESETS.tiny.model).layer_norm_epsilon, LAYERNORM_EPS);
    const python = readFileSync(join(__dirname, '..', 'scripts', 'gpt2_torch.py'), 'utf8');
    const match = /^LAYER_NORM_EPSILON = (\S+)$/m.exec(python);
    assert.ok(match !== null, 'scripts/gpt2_torch.py defines LAYER_NORM_EPSILON');
    assert.equal(Number(match[1]), LAYERNORM_EPS);
  });

  const shapes: Array<[number, number]> = [[1, 1], [3, 1], [2, 3], [5, 5], [7, 64], [4, 256], [3, 67], [1024, 256]];

  it('forward: out, mean, rstd over ragged C ∈ {1, 3, 5, 64, 67, 256} incl. N = 1024, offset rows', () => {
    for (const [N, C] of shapes) {
      for (const offset of [0, 50]) {
        arena.reset();
        const rand = rng(N * 1000 + C + offset);
        const label = `LN fwd N=${N} C=${C} offset=${offset}`;
        // rows with a large common offset (|mean| ≫ std) stress the mean subtraction
        const inp = arena.f32(N * C, () => offset + 2 * rand());
        const weight = arena.f32(C, () => 1 + 0.5 * rand());
        const bias = arena.f32(C, () => 0.3 * rand());
        const out = arena.f32(N * C, () => NaN), mean = arena.f32(N, () => NaN), rstd = arena.f32(N, () => NaN);
        kernels.layernormForward(ptr(out), ptr(mean), ptr(rstd), ptr(inp), ptr(weight), ptr(bias), N, C);
        const wOut = new Float32Array(N * C), wMean = new Float32Array(N), wRstd = new Float32Array(N);
        layernormForward(wOut, wMean, wRstd, inp.slice(), weight.slice(), bias.slice(), N, C);
        // out = norm·w + b: errors scale with |norm·w| + |b| (norm = (x − mean)·rstd is O(1))
        const mag = Array.from(wOut, (_, i) => {
          const c = i % C, n = Math.floor(i / C);
          return Math.abs((inp[i]! - wMean[n]!) * wRstd[n]! * weight[c]!) + Math.abs(bias[c]!);
        });
        expectClose(`${label} out`, out, wOut, mag, 1e-30);
        expectClose(`${label} mean`, mean, wMean, Array.from(wMean, Math.abs), 1e-30, 1e-6);
        expectClose(`${label} rstd`, rstd, wRstd, Array.from(wRstd, Math.abs), 0, 1e-6);
      }
    }
  });

  it('backward: dinp, dweight, dbias accumulate onto non-zero prior contents', () => {
    for (const [N, C] of shapes) {
      arena.reset();
      const rand = rng(N * 31 + C);
      const label = `LN bwd N=${N} C=${C}`;
      const inp = arena.f32(N * C, () => 1 + 2 * rand());
      const weight = arena.f32(C, () => 1 + 0.5 * rand());
      const bias = arena.f32(C, () => 0.3 * rand());
      const out = arena.f32(N * C), mean = arena.f32(N), rstd = arena.f32(N);
      layernormForward(out, mean, rstd, inp, weight, bias, N, C); // the twin's saved stats for both
      const dout = arena.f32(N * C, () => rand());
      const dinp = arena.f32(N * C, () => rand()), dweight = arena.f32(C, () => rand()), dbias = arena.f32(C, () => rand());
      const wDinp = dinp.slice(), wDweight = dweight.slice(), wDbias = dbias.slice();
      layernormBackward(wDinp, wDweight, wDbias, dout.slice(), inp.slice(), weight.slice(), mean.slice(), rstd.slice(), N, C);
      kernels.layernormBackward(ptr(dinp), ptr(dweight), ptr(dbias), ptr(dout), ptr(inp), ptr(weight), ptr(mean), ptr(rstd), N, C);
      // magnitudes: the prior plus the absolute values of every term summed into the output
      const magX = new Float64Array(N * C), magW = new Float64Array(C), magB = new Float64Array(C);
      for (let n = 0; n < N; n++) {
        let a1 = 0, a2 = 0;
        for (let c = 0; c < C; c++) {
          const norm = (inp[n * C + c]! - mean[n]!) * rstd[n]!;
          const dn = weight[c]! * dout[n * C + c]!;
          a1 += Math.abs(dn);
          a2 += Math.abs(dn * norm);
        }
        for (let c = 0; c < C; c++) {
          const norm = (inp[n * C + c]! - mean[n]!) * rstd[n]!;
          const d = dout[n * C + c]!;
          magX[n * C + c] = (Math.abs(weight[c]! * d) + a1 / C + Math.abs(norm) * a2 / C) * rstd[n]!;
          magW[c] += Math.abs(norm * d);
          magB[c] += Math.abs(d);
        }
      }
      // + the priors (uniform in [−1, 1))
      for (let i = 0; i < N * C; i++) magX[i] += 1;
      for (let c = 0; c < C; c++) {
        magW[c] += 1;
        magB[c] += 1;
      }
      expectClose(`${label} dinp`, dinp, wDinp, magX);
      expectClose(`${label} dweight`, dweight, wDweight, magW);
      expectClose(`${label} dbias`, dbias, wDbias, magB);
    }
  });
});

// ---- GELU ------------------------------------------------------------------------------------

/** GELU and GELU' in float64 via the twins, at given float64 inputs. */
function geluRef(x: Float64Array): { y: Float64Array; dy: Float64Array } {
  const y = new Float64Array(x.length), dy = new Float64Array(x.length);
  geluForward(y, x, x.length);
  geluBackward(dy, x, new Float64Array(x.length).fill(1), x.length);
  return { y, dy };
}

function geluInputs(n: number, seed: number): number[] {
  const rand = rng(seed);
  const special = [0, -0, 1e-6, -1e-6, 0.75, -0.75, 1, -1, 3, -3, 5, -5, 10, -10, 15, -15, 50, -50, 1e4, -1e4];
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(i < special.length && n > 40 ? special[i]! : 4 * rand() * Math.abs(rand()) * 2);
  return xs;
}

describe('GELU (wasm) vs layers.ts twin', () => {
  const LENGTHS = [0, 1, 3, 5, 17, 1003, 40_000];
  it('forward: both tails (x = ±50, ±1e4), ragged n', () => {
    for (const n of LENGTHS) {
      arena.reset();
      const xs = geluInputs(n, n + 5);
      const x = arena.f32At(xs, n % 3);
      const out = arena.f32(n, () => NaN);
      kernels.geluForward(ptr(out), ptr(x), n);
      const xf = f64(x);
      const { y } = geluRef(xf);
      // sensitivity to a 1e-6 relative change of x (far negative tail: out ≈ x·e^(−2|u|), steep)
      const lo = geluRef(xf.map((v) => v * (1 - 1e-6))).y, hi = geluRef(xf.map((v) => v * (1 + 1e-6))).y;
      const mag = Array.from(y, (v, i) => Math.abs(v) + Math.abs(hi[i]! - lo[i]!) / (2 * REL));
      // The twin forms 1 + tanh(u) in float64, so for x ≲ −5.6 it is only good to ~|x|·1e-16
      // absolute (it returns 0 where the kernel returns the true ~1e-17): allow that much.
      expectClose(`GELU fwd n=${n}`, out, Float32Array.from(y), mag.map((m, i) => m + Math.abs(xf[i]!) * 2e-16 / REL), 1e-38);
      // also in place (out = inp)
      const inPlace = arena.f32At(xs, 1);
      kernels.geluForward(ptr(inPlace), ptr(inPlace), n);
      assert.deepEqual(inPlace, out, `GELU fwd in place n=${n}`);
    }
  });

  it('forward tail: relative error ≤ 3e-5 vs the exact x·sigmoid(2u) down to x ≈ −9.8 (out ≈ 1e-34), then tiny', () => {
    arena.reset();
    const xs = Array.from({ length: 1100 }, (_, i) => -11 + i * 0.01); // −11 … −0.01
    const x = arena.f32At(xs, 0);
    const out = arena.f32(xs.length);
    kernels.geluForward(ptr(out), ptr(x), xs.length);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) {
      const xv = x[i]!;
      const u = Math.sqrt(2 / Math.PI) * (xv + 0.044715 * xv ** 3);
      const exact = xv / (1 + Math.exp(-2 * u));
      if (-2 * u > 80) {
        // the kernel caps exp(−2u) at e^80 (no denormals): out = x·1.8e-35 instead of ~0
        assert.ok(Math.abs(out[i]!) <= Math.abs(xv) * 1.81e-35 && Math.abs(out[i]!) >= Math.abs(exact), `gelu(${xv}) = ${out[i]}, exact ${exact}`);
        continue;
      }
      const r = Math.abs(out[i]! - exact) / Math.abs(exact);
      assert.ok(r <= 3e-5, `gelu(${xv}) = ${out[i]}, exact ${exact}, rel ${r}`);
      worst = Math.max(worst, r);
    }
    if (VERBOSE) console.log(`  GELU tail: max relative error ${worst.toExponential(3)}`);
  });

  it('backward: dinp += gelu\'(x)·dout onto non-zero prior contents', () => {
    for (const n of LENGTHS) {
      arena.reset();
      const rand = rng(n + 77);
      const xs = geluInputs(n, n + 6);
      const x = arena.f32At(xs, (n + 1) % 4);
      const dout = arena.f32(n, () => rand());
      const dinp = arena.f32(n, () => rand());
      const want = f64(dinp);
      geluBackward(want, f64(x), f64(dout), n);
      kernels.geluBackward(ptr(dinp), ptr(x), ptr(dout), n);
      const xf = f64(x);
      const { dy } = geluRef(xf);
      const lo = geluRef(xf.map((v) => v * (1 - 1e-6))).dy, hi = geluRef(xf.map((v) => v * (1 + 1e-6))).dy;
      // prior + |gelu'·dout| + sensitivity; gelu' is O(1) and crosses 0 at x ≈ −0.75, so an
      // absolute floor of 1e-2·|dout| (→ 1e-7·|dout| after REL) covers float32 rounding there.
      const mag = Array.from(dy, (d, i) => Math.abs(want[i]! - d * dout[i]!) + (Math.abs(d) + 1e-2 + Math.abs(hi[i]! - lo[i]!) / (2 * REL)) * Math.abs(dout[i]!));
      expectClose(`GELU bwd n=${n}`, dinp, want, mag);
    }
  });
});

// ---- causal softmax rows ------------------------------------------------------------------------

describe('causalSoftmaxRows / causalSoftmaxBackwardRows (wasm) vs reference.ts twins (float64)', () => {
  const TS = [1, 2, 3, 5, 7, 33, 64, 128];
  it('forward: ragged T, stale NaN above the diagonal is never read, extreme and masked scores', () => {
    for (const T of TS) {
      for (const kind of ['random', 'extreme'] as const) {
        arena.reset();
        const rand = rng(T * 7 + (kind === 'extreme' ? 1 : 0));
        const scale = 1 / Math.sqrt(32);
        const att = arena.f32(T * T, (i) => {
          const t = Math.floor(i / T), j = i % T;
          if (j > t) return NaN; // stale: must be ignored and zeroed
          if (kind === 'random') return 8 * rand();
          return j % 5 === 0 ? 450 : j % 5 === 1 ? -450 : j % 5 === 2 ? -1e30 : 100 * rand(); // ±80 after scaling
        });
        const scores = att.slice();
        kernels.causalSoftmaxRows(ptr(att), T, scale);
        const want = f64(scores);
        causalSoftmaxRowsRef(want, T, scale);
        const mag = Array.from(want, (p, i) => {
          const t = Math.floor(i / T);
          let max = -Infinity;
          for (let j = 0; j <= t; j++) max = Math.max(max, scale * scores[t * T + j]!);
          const x = scale * scores[i]!;
          return p * (1 + 0.1 * (Number.isFinite(x) ? Math.abs(x - max) : 0));
        });
        expectClose(`softmax rows T=${T} ${kind}`, att, want, mag, 1e-37);
        for (let t = 0; t < T; t++) for (let j = t + 1; j < T; j++) assert.equal(att[t * T + j], 0, `T=${T}: [${t},${j}] zeroed`);
      }
    }
  });

  it('backward: dpre = scale·att·(datt − Σ att·datt), causal; separate and aliased (dpre = datt)', () => {
    for (const T of TS) {
      for (const alias of [false, true]) {
        arena.reset();
        const rand = rng(T * 13 + (alias ? 1 : 0));
        const scale = 0.25;
        const scores = arena.f32(T * T, () => 3 * rand());
        kernels.causalSoftmaxRows(ptr(scores), T, 1);
        const att = scores;
        const datt = arena.f32(T * T, (i) => (i % T > Math.floor(i / T) ? NaN : rand())); // NaN above the diagonal: not read
        const dpre = alias ? datt : arena.f32(T * T, () => NaN);
        const want = new Float64Array(T * T), mag = new Float64Array(T * T);
        causalSoftmaxBackwardRowsRef(want, att, datt, T, scale);
        for (let t = 0; t < T; t++) {
          let dotAbs = 0;
          for (let j = 0; j <= t; j++) dotAbs += Math.abs(att[t * T + j]! * datt[t * T + j]!);
          for (let j = 0; j <= t; j++) mag[t * T + j] = scale * att[t * T + j]! * (Math.abs(datt[t * T + j]!) + dotAbs);
        }
        kernels.causalSoftmaxBackwardRows(ptr(dpre), ptr(att), ptr(datt), T, scale);
        expectClose(`softmax bwd T=${T}${alias ? ' aliased' : ''}`, dpre, want, mag, 1e-37);
      }
    }
  });
});

// ---- whole attention ------------------------------------------------------------------------------

describe('attentionForward / attentionBackward (wasm) vs layers.ts twins', () => {
  // [B, T, C, NH]: T across the 32-row causal blocks, hs = C/NH from 1 to 32, the seed shape
  const shapes: Array<[number, number, number, number]> = [
    [1, 1, 4, 1], [2, 2, 6, 3], [1, 7, 12, 3], [2, 5, 8, 2], [1, 3, 5, 5], [1, 33, 40, 5], [2, 65, 24, 3],
    [1, 64, 64, 4], [2, 128, 256, 8],
  ];
  for (const [B, T, C, NH] of shapes) {
    it(`B=${B} T=${T} C=${C} NH=${NH}: out, att, and dqkv accumulated onto a prior`, () => {
      arena.reset();
      const rand = rng(B * 1e6 + T * 1e3 + C + NH);
      const label = `attention B=${B} T=${T} C=${C} NH=${NH}`;
      const hs = C / NH;
      const qkv = arena.f32(B * T * 3 * C, () => 1.5 * rand());
      const out = arena.f32(B * T * C, () => NaN);
      const att = arena.f32(B * NH * T * T, () => NaN);
      kernels.attentionForward(ptr(out), ptr(att), ptr(qkv), B, T, C, NH);
      const wOut = new Float32Array(B * T * C), wAtt = new Float32Array(B * NH * T * T);
      attentionForward(wOut, wAtt, qkv.slice(), B, T, C, NH);
      // att: a score error δ (float32 dot of hs terms, ~|q|·|k|·2⁻²⁴) moves p by p·δ
      const scale = 1 / Math.sqrt(hs);
      const attMag = Array.from(wAtt, (p) => p * (1 + scale * 2.25 * hs * 0.1));
      expectClose(`${label} att`, att, wAtt, attMag, 1e-37);
      // out[t] = Σ p·v: Σ p·|v| (≤ max |v| = 1.5)
      expectClose(`${label} out`, out, wOut, 1.5, 1e-30);

      // backward onto a random prior; the twin uses its own att (they agree to ~1e-7)
      const dout = arena.f32(B * T * C, () => rand());
      const dqkv = arena.f32(B * T * 3 * C, () => rand());
      const scratch = arena.f32(T * T, () => NaN);
      const want = dqkv.slice();
      attentionBackward(want, new Float32Array(T), dout.slice(), qkv.slice(), wAtt, B, T, C, NH);
      kernels.attentionBackward(ptr(dqkv), ptr(scratch), ptr(dout), ptr(qkv), ptr(att), B, T, C, NH);
      // magnitudes: prior + Σ |terms| of each gradient
      const mag = new Float64Array(B * T * 3 * C).fill(1);
      const C3 = 3 * C;
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < NH; h++) {
          for (let t = 0; t < T; t++) {
            const a = ((b * NH + h) * T + t) * T;
            const o = (b * T + t) * C + h * hs;
            const q = (b * T + t) * C3 + h * hs;
            const datt: number[] = [];
            let dotAbs = 0;
            for (let t2 = 0; t2 <= t; t2++) {
              const v = (b * T + t2) * C3 + 2 * C + h * hs;
              let s = 0;
              for (let i = 0; i < hs; i++) {
                s += Math.abs(dout[o + i]! * qkv[v + i]!);
                mag[v + i] += wAtt[a + t2]! * Math.abs(dout[o + i]!);
              }
              datt.push(s);
              dotAbs += wAtt[a + t2]! * s;
            }
            for (let t2 = 0; t2 <= t; t2++) {
              const dpre = wAtt[a + t2]! * (datt[t2]! + dotAbs) * scale;
              const k = (b * T + t2) * C3 + C + h * hs;
              for (let i = 0; i < hs; i++) {
                mag[q + i] += dpre * Math.abs(qkv[k + i]!);
                mag[k + i] += dpre * Math.abs(qkv[q + i]!);
              }
            }
          }
        }
      }
      expectClose(`${label} dqkv`, dqkv, want, mag);
    });
  }
});

// ---- optimizer ------------------------------------------------------------------------------------

describe('adamwUpdate / sumSquares (wasm) vs adamw.ts twins', () => {
  it('adamwUpdate: ragged n, steps 1 and 1000, decay on/off, gradient scale, tiny and zero gradients', () => {
    for (const n of [0, 1, 3, 5, 17, 1003, 100_000]) {
      for (const [t, decayOn] of [[1, true], [1000, false], [7, true]] as const) {
        arena.reset();
        const rand = rng(n * 3 + t);
        const h = { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
        const gradScale = 0.7;
        const params = arena.f32(n, () => 0.05 * rand());
        // gradients over many magnitudes, some exactly 0
        const grads = arena.f32(n, (i) => (i % 11 === 0 ? 0 : rand() * 10 ** (-1 - 9 * Math.abs(rand()))));
        const m = arena.f32(n, () => (t === 1 ? 0 : 1e-3 * rand()));
        const v = arena.f32(n, () => (t === 1 ? 0 : 1e-6 * Math.abs(rand())));
        const wP = params.slice(), wM = m.slice(), wV = v.slice();
        const layout = [{ name: 'w', shape: [n], offset: 0, size: n, decay: decayOn }];
        adamwUpdateRange(wP, grads.slice(), wM, wV, layout, h, t, 0, n, gradScale);
        const p0 = params.slice(), m0 = m.slice(), v0 = v.slice();
        const decay = decayOn ? 1 - h.lr * h.weightDecay : 1;
        const stepSize = h.lr / (1 - Math.pow(h.beta1, t));
        const bc2Sqrt = Math.sqrt(1 - Math.pow(h.beta2, t));
        kernels.adamwUpdate(ptr(params), ptr(grads), ptr(m), ptr(v), n, h.beta1, h.beta2, h.eps, decay, stepSize, bc2Sqrt, gradScale);
        const label = `AdamW n=${n} t=${t}`;
        const magM = Array.from(m0, (mi, i) => h.beta1 * Math.abs(mi) + (1 - h.beta1) * Math.abs(grads[i]! * gradScale));
        const magV = Array.from(v0, (vi, i) => h.beta2 * vi + (1 - h.beta2) * (grads[i]! * gradScale) ** 2);
        const magP = Array.from(p0, (pi, i) => Math.abs(pi * decay) + Math.abs(wP[i]! - pi * decay));
        expectClose(`${label} m`, m, wM, magM, 1e-38);
        expectClose(`${label} v`, v, wV, magV, 1e-38);
        expectClose(`${label} params`, params, wP, magP, 1e-38);
      }
    }
  });

  it('sumSquares: float64 accumulation, ragged n', () => {
    for (const n of [0, 1, 3, 7, 8, 9, 1003, 1_000_001]) {
      arena.reset();
      const rand = rng(n);
      const x = arena.f32At(Array.from({ length: n }, () => rand() * 10 ** (3 * rand())), n % 4);
      const got = kernels.sumSquares(ptr(x), n);
      const want = sumSquares(x);
      assert.ok(Math.abs(got - want) <= 1e-12 * want, `sumSquares n=${n}: ${got} vs ${want}`);
    }
  });
});
