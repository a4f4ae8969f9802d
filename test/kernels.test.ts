// WebAssembly SIMD128 kernels (dist/kernels.wasm, built by `node esbuild.mjs`) against their
// plain-TS twins (src/ml/kernels/reference.ts).
//
// Tolerance: the twin accumulates in float64 and rounds once; the fast kernel accumulates in
// float32. Per output we allow 1e-5 · max(1, sqrt(K/64)) · mag, with mag = Σ_k |a·b| + |C0|
// + |bias| (the twin run on absolute values). The worst-case float32 summation bound grows
// like K·2⁻²⁴·mag, but random-sign data behaves like sqrt(K); this is 20× above what we see
// at K = 10000 and still catches a single dropped or doubled term for K ≤ ~1000.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  KERNEL_SCRATCH_BYTES, MatmulFlags, compileKernels, createKernelMemory, createKernels,
  type Kernels, type WasmMemory, type WasmModule,
} from '../src/ml/kernels/wasmKernels';
import { KERNELS, SCRATCH_EXPORTS, type KernelSignature } from '../src/ml/kernels/kernelTable';
import { addRef, colsumIntoRef, KERNEL_TWINS, matmulRef, sumIntoRef } from '../src/ml/kernels/reference';

const { TRANS_A, TRANS_B, ACCUMULATE, BIAS } = MatmulFlags;
const WASM_PATH = join(__dirname, '..', 'dist', 'kernels.wasm');

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

/**
 * Bump allocator of Float32Array views in the kernels' memory (64-byte aligned). It never
 * grows the memory: a grow would detach the views handed out before it.
 */
class Arena {
  private top: number;
  constructor(private readonly memory: WasmMemory, private readonly base: number) {
    this.top = base;
  }
  reset(): void {
    this.top = this.base;
  }
  alloc(n: number): Float32Array {
    const need = this.top + n * 4;
    if (need > this.memory.buffer.byteLength) throw new RangeError(`test arena exhausted (${need} bytes)`);
    const v = new Float32Array(this.memory.buffer, this.top, n);
    this.top = (need + 63) & ~63;
    return v;
  }
  random(n: number, rand: () => number): Float32Array {
    const v = this.alloc(n);
    for (let i = 0; i < n; i++) v[i] = rand();
    return v;
  }
}

const abs = (v: Float32Array): Float32Array => v.map(Math.abs);
const flagName = (f: number): string =>
  [(f & TRANS_A) !== 0 ? 'Aᵀ' : 'A', (f & TRANS_B) !== 0 ? 'Bᵀ' : 'B', (f & ACCUMULATE) !== 0 ? '+=' : '=', (f & BIAS) !== 0 ? '+bias' : '']
    .filter(Boolean).join(' ');

let wasmBytes: Uint8Array;
let memory: WasmMemory;
let kernels: Kernels;
/** The instance checkMatmul runs on (a second one has the minimum scratch). */
let matmulKernels: Kernels;
let arena: Arena;

before(() => {
  wasmBytes = readFileSync(WASM_PATH);
  memory = createKernelMemory(1024, 2048); // 64 MiB: the largest case needs ~55 MiB
  kernels = createKernels(wasmBytes, memory, { ptr: 0, bytes: KERNEL_SCRATCH_BYTES });
  matmulKernels = kernels;
  arena = new Arena(memory, KERNEL_SCRATCH_BYTES);
});

interface Case {
  M: number;
  N: number;
  K: number;
  flags: number;
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Compare only these rows of C (big shapes: the twin is ~100x slower). Default: all. */
  rows?: number[];
  seed?: number;
}

/**
 * Runs one matmul on fresh random data with the fast kernel and with the twin, compares
 * C[rows, 0:N], and checks that C's padding (row stride > N) and two guard zones around C
 * are untouched.
 */
function checkMatmul(c: Case): void {
  const { M, N, K, flags } = c;
  const transA = (flags & TRANS_A) !== 0;
  const transB = (flags & TRANS_B) !== 0;
  const lda = c.lda ?? (transA ? M : K);
  const ldb = c.ldb ?? (transB ? K : N);
  const ldc = c.ldc ?? N;
  const rand = rng(c.seed ?? M * 1_000_003 + N * 1009 + K * 17 + flags);
  arena.reset();
  const aRows = transA ? K : M;
  const bRows = transB ? N : K;
  const A = arena.random(aRows * lda, rand);
  const B = arena.random(bRows * ldb, rand);
  const bias = (flags & BIAS) !== 0 ? arena.random(N, rand) : null;
  const GUARD = 16;
  const Cg = arena.random(GUARD + M * ldc + GUARD, rand); // old C contents (used if ACCUMULATE)
  const C = Cg.subarray(GUARD, GUARD + M * ldc);
  const Cbefore = Cg.slice();

  const biasPtr = bias === null ? 0 : bias.byteOffset;
  const natural = c.lda === undefined && c.ldb === undefined && c.ldc === undefined;
  if (natural) matmulKernels.matmul(C.byteOffset, A.byteOffset, B.byteOffset, biasPtr, M, N, K, flags);
  else matmulKernels.matmulLd(C.byteOffset, ldc, A.byteOffset, lda, B.byteOffset, ldb, biasPtr, M, N, K, flags);

  // The twin on the selected rows only: gather those rows of op(A) into a dense matrix.
  const rows = c.rows ?? Array.from({ length: M }, (_, i) => i);
  const R = rows.length;
  const Asub = new Float32Array(R * K);
  for (let i = 0; i < R; i++) {
    for (let k = 0; k < K; k++) Asub[i * K + k] = transA ? A[k * lda + rows[i]!]! : A[rows[i]! * lda + k]!;
  }
  const Csub = new Float32Array(R * N);
  for (let i = 0; i < R; i++) for (let n = 0; n < N; n++) Csub[i * N + n] = Cbefore[GUARD + rows[i]! * ldc + n]!;
  const refFlags = flags & ~TRANS_A; // Asub is [R, K]
  const Bcopy = B.slice();
  const want = Csub.slice();
  matmulRef(want, Asub, Bcopy, bias, R, N, K, refFlags, { ldb });
  const mag = abs(Csub);
  matmulRef(mag, abs(Asub), abs(Bcopy), bias === null ? null : abs(bias), R, N, K, refFlags, { ldb });

  const rel = 1e-5 * Math.max(1, Math.sqrt(K / 64));
  const label = `${flagName(flags)} M=${M} N=${N} K=${K}` + (c.lda !== undefined || c.ldb !== undefined || c.ldc !== undefined ? ` ld=${lda},${ldb},${ldc}` : '');
  for (let i = 0; i < R; i++) {
    for (let n = 0; n < N; n++) {
      const got = C[rows[i]! * ldc + n]!;
      const exp = want[i * N + n]!;
      const tol = rel * mag[i * N + n]! + 1e-30;
      if (!(Math.abs(got - exp) <= tol)) {
        assert.fail(`${label}: C[${rows[i]}, ${n}] = ${got}, twin ${exp}, |diff| ${Math.abs(got - exp)} > tol ${tol}`);
      }
    }
  }
  for (let g = 0; g < GUARD; g++) {
    assert.equal(Cg[g], Cbefore[g], `${label}: guard before C overwritten`);
    assert.equal(Cg[GUARD + M * ldc + g], Cbefore[GUARD + M * ldc + g], `${label}: guard after C overwritten`);
  }
  for (let m = 0; m < M; m++) {
    for (let n = N; n < ldc; n++) assert.equal(C[m * ldc + n], Cbefore[GUARD + m * ldc + n], `${label}: C row padding overwritten`);
  }
}

const SIZES = [1, 3, 5, 7, 9, 17, 33, 63, 65, 127, 129];
const VARIANTS = [0, TRANS_B, TRANS_A, TRANS_A | TRANS_B];
const EXTRAS = [0, ACCUMULATE, BIAS, ACCUMULATE | BIAS];

describe('matmul (wasm) vs twin', () => {
  for (const v of VARIANTS) {
    it(`ragged shapes, ${flagName(v)}: every M, N in {1,3,5,…,129}, all K sizes and flag combos`, () => {
      SIZES.forEach((M, i) => {
        SIZES.forEach((N, j) => {
          const K = SIZES[(i + 2 * j) % SIZES.length]!;
          checkMatmul({ M, N, K, flags: v | EXTRAS[(i + j) % EXTRAS.length]! });
        });
      });
    });
  }

  it('K across the KC = 256 block boundary and M across MC = 128 (multi-block accumulation)', () => {
    for (const v of VARIANTS) {
      for (const K of [255, 256, 257, 300, 513]) {
        for (const extra of EXTRAS) checkMatmul({ M: 37, N: 45, K, flags: v | extra });
      }
      checkMatmul({ M: 257, N: 70, K: 520, flags: v | ACCUMULATE | BIAS });
      checkMatmul({ M: 8, N: 16, K: 1000, flags: v });
    }
  });

  it('K = 0 gives (C or 0) + bias', () => {
    for (const extra of EXTRAS) checkMatmul({ M: 5, N: 9, K: 0, flags: extra });
  });

  it('explicit row strides (sub-matrix views), C padding untouched', () => {
    for (const v of VARIANTS) {
      for (const extra of [0, ACCUMULATE | BIAS]) {
        const M = 19, N = 13, K = 21;
        const transA = (v & TRANS_A) !== 0, transB = (v & TRANS_B) !== 0;
        checkMatmul({ M, N, K, flags: v | extra, lda: (transA ? M : K) + 5, ldb: (transB ? K : N) + 3, ldc: N + 7 });
      }
    }
  });

  it('attention-style strided heads: att = q_h · k_hᵀ and y_h = att · v_h inside qkv[T, 3C]', () => {
    const T = 128, C = 256, hs = 32;
    // q_h = qkv[:, h·hs:(h+1)·hs] → A [T, hs] with lda = 3C (offset handled by the caller)
    checkMatmul({ M: T, N: T, K: hs, flags: TRANS_B, lda: 3 * C, ldb: 3 * C });
    checkMatmul({ M: T, N: hs, K: T, flags: 0, ldb: 3 * C, ldc: C });
    checkMatmul({ M: T, N: hs, K: T, flags: ACCUMULATE, ldb: 3 * C, ldc: C });
  });

  it('seed-model shapes (B·T = 1024, C = 256, 3C, 4C, vocab 10000), sampled rows', () => {
    const R = 1024;
    const sample = (M: number): number[] => {
      const rows = [0, 1, 2, 3, 4, M - 5, M - 4, M - 3, M - 2, M - 1];
      for (let i = 0; i < 14; i++) rows.push(Math.floor((i + 0.5) * (M / 14)));
      return rows.filter((r) => r >= 0 && r < M);
    };
    const shapes: Array<[number, number, number, number]> = [
      // forward: x[1024, in] @ W[in, out] + b
      [R, 768, 256, BIAS], [R, 256, 256, BIAS], [R, 1024, 256, BIAS], [R, 256, 1024, BIAS],
      // logits = x @ wteᵀ (wte [10000, 256])
      [R, 10000, 256, TRANS_B],
      // backward dx = dy @ Wᵀ (accumulating into a residual gradient)
      [R, 256, 768, TRANS_B | ACCUMULATE], [R, 256, 1024, TRANS_B], [R, 1024, 256, TRANS_B],
      // dx from the logits: dlogits[1024, 10000] @ wte[10000, 256]
      [R, 256, 10000, 0],
      // dW = xᵀ @ dy (accumulating over micro-batches), dwte = dlogitsᵀ @ x
      [256, 768, R, TRANS_A | ACCUMULATE], [256, 1024, R, TRANS_A], [1024, 256, R, TRANS_A | ACCUMULATE], [10000, 256, R, TRANS_A],
    ];
    for (const [M, N, K, flags] of shapes) checkMatmul({ M, N, K, flags, rows: sample(M) });
  });

  it('inference shapes (M = 1 token, streaming path) and M < 4 with K beyond its limit (packed path)', () => {
    for (const [M, N, K, flags] of [
      [1, 768, 256, BIAS], [1, 10000, 256, TRANS_B], [1, 256, 1024, ACCUMULATE | BIAS], [1, 1024, 256, TRANS_A | BIAS],
      [2, 37, 33000, 0], [3, 9, 33000, TRANS_B | ACCUMULATE], [1, 5, 40000, TRANS_A | TRANS_B | BIAS],
    ] as const) checkMatmul({ M, N, K, flags });
  });

  it('minimum scratch: B packed 8 columns at a time (many jc blocks)', () => {
    const k2 = createKernels(wasmBytes, memory, { ptr: KERNEL_SCRATCH_BYTES / 2, bytes: kernels.scratchMinBytes });
    matmulKernels = k2;
    try {
      for (const v of VARIANTS) {
        checkMatmul({ M: 33, N: 70, K: 300, flags: v | ACCUMULATE | BIAS });
        checkMatmul({ M: 9, N: 129, K: 17, flags: v });
        checkMatmul({ M: 9, N: 129, K: 17, flags: v, ldc: 130 });
      }
    } finally {
      matmulKernels = kernels;
    }
  });
});

describe('elementwise kernels (wasm) vs twins', () => {
  const LENGTHS = [0, 1, 3, 4, 5, 17, 1000, 1003];
  it('add, sumInto: bit-exact', () => {
    for (const n of LENGTHS) {
      arena.reset();
      const rand = rng(n + 1);
      const a = arena.random(n, rand), b = arena.random(n, rand), out = arena.random(n, rand);
      kernels.add(out.byteOffset, a.byteOffset, b.byteOffset, n);
      const want = new Float32Array(n);
      addRef(want, a.slice(), b.slice());
      assert.deepEqual(out, want, `add n=${n}`);

      const d = a.slice();
      kernels.sumInto(a.byteOffset, out.byteOffset, n);
      sumIntoRef(d, out.slice());
      assert.deepEqual(a, d, `sumInto n=${n}`);
    }
  });

  it('colsumInto: within float32 rounding', () => {
    for (const [M, N] of [[1, 1], [3, 5], [64, 256], [1024, 768], [7, 1003]] as const) {
      arena.reset();
      const rand = rng(M * 31 + N);
      const src = arena.random(M * N, rand), dst = arena.random(N, rand);
      const want = dst.slice();
      kernels.colsumInto(dst.byteOffset, src.byteOffset, M, N);
      colsumIntoRef(want, src.slice());
      for (let n = 0; n < N; n++) assert.ok(Math.abs(dst[n]! - want[n]!) <= 1e-6 * M + 1e-6, `colsum M=${M} N=${N} n=${n}`);
    }
  });
});

/**
 * Parameter and result types of every exported function of a wasm binary, read from its type,
 * import, function and export sections (Node 20 has no type reflection for wasm functions).
 */
function exportedFunctionTypes(wasm: Uint8Array): Map<string, { params: string[]; results: string[] }> {
  const VALTYPES: Record<number, string> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128' };
  let p = 8; // magic + version
  const byte = (): number => wasm[p++]!;
  const leb = (): number => {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      const b = byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  const name = (): string => {
    const n = leb();
    p += n;
    return new TextDecoder().decode(wasm.subarray(p - n, p));
  };
  const valtypes = (): string[] => Array.from({ length: leb() }, () => VALTYPES[byte()] ?? '?');
  const limits = (): void => {
    const flags = byte();
    leb();
    if (flags & 1) leb();
  };
  const types: Array<{ params: string[]; results: string[] }> = [];
  const funcTypes: number[] = []; // type index of each function, imported ones first
  const exports = new Map<string, { params: string[]; results: string[] }>();
  while (p < wasm.length) {
    const id = byte();
    const end = leb() + p;
    if (id === 1) {
      for (let n = leb(); n > 0; n--) {
        assert.equal(byte(), 0x60, 'function type');
        types.push({ params: valtypes(), results: valtypes() });
      }
    } else if (id === 2) {
      for (let n = leb(); n > 0; n--) {
        name();
        name();
        const kind = byte();
        if (kind === 0) funcTypes.push(leb());
        else if (kind === 1) { byte(); limits(); }
        else if (kind === 2) limits();
        else { byte(); byte(); }
      }
    } else if (id === 3) {
      for (let n = leb(); n > 0; n--) funcTypes.push(leb());
    } else if (id === 7) {
      for (let n = leb(); n > 0; n--) {
        const exportName = name();
        const kind = byte();
        const index = leb();
        if (kind === 0) exports.set(exportName, types[funcTypes[index]!]!);
      }
    }
    p = end;
  }
  return exports;
}

describe('loader and memory', () => {
  it('the module imports only a shared env.memory and exports exactly the functions of kernelTable.ts, with their wasm types', () => {
    const mod = compileKernels(wasmBytes) as unknown as object;
    const WA = (globalThis as unknown as {
      WebAssembly: { Module: { imports(m: object): Array<{ module: string; name: string; kind: string }>; exports(m: object): Array<{ name: string }> } };
    }).WebAssembly;
    assert.deepEqual(WA.Module.imports(mod), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    const table: KernelSignature[] = [...Object.values(KERNELS), ...Object.values(SCRATCH_EXPORTS)];
    assert.deepEqual(WA.Module.exports(mod).map((e) => e.name).sort(), table.map((k) => k.wasm).sort());
    const types = exportedFunctionTypes(wasmBytes);
    const WASM_TYPE = { ptr: 'i32', i32: 'i32', f32: 'f32', f64: 'f64' } as const;
    for (const k of table) {
      const want = {
        params: k.args.map((a) => WASM_TYPE[a.slice(a.indexOf(': ') + 2) as keyof typeof WASM_TYPE]),
        results: k.returns === 'void' ? [] : [k.returns],
      };
      assert.deepEqual(types.get(k.wasm), want, `${k.wasm}: wasm type vs kernelTable.ts`);
    }
  });

  it('every kernel has a twin in reference.ts', () => {
    for (const name of Object.keys(KERNELS) as Array<keyof typeof KERNELS>) {
      assert.equal(typeof KERNEL_TWINS[name], 'function', name);
    }
    assert.deepEqual(Object.keys(KERNEL_TWINS).sort(), Object.keys(KERNELS).sort());
  });

  it('refuses a kernels.wasm that does not match the table', () => {
    const WA = (globalThis as unknown as { WebAssembly: { Module: { exports(m: object): Array<{ name: string }> } } }).WebAssembly;
    // The same module with one export renamed: createKernels names the kernel it cannot find.
    const renamed = wasmBytes.slice();
    const at = Buffer.from(renamed).indexOf('sum_squares');
    assert.ok(at > 0);
    renamed[at] = 'S'.charCodeAt(0);
    assert.ok(WA.Module.exports(compileKernels(renamed) as unknown as object).some((e) => e.name === 'Sum_squares'));
    assert.throws(() => createKernels(renamed, memory, { ptr: 0, bytes: KERNEL_SCRATCH_BYTES }), /no export sum_squares/);
  });

  it('rejects a non-shared memory and a bad scratch', () => {
    const WA = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => WasmMemory } }).WebAssembly;
    assert.throws(() => createKernels(wasmBytes, new WA.Memory({ initial: 1, maximum: 10 }), { ptr: 0, bytes: 1 << 20 }), /shared/);
    assert.throws(() => kernels.setScratch(8, KERNEL_SCRATCH_BYTES), /aligned/);
    assert.throws(() => kernels.setScratch(0, 1024), /scratch rejected/);
    assert.throws(() => kernels.setScratch(memory.buffer.byteLength - 16, 1024), /outside memory/);
    kernels.setScratch(0, KERNEL_SCRATCH_BYTES);
  });

  it('two worker threads run matmul on the same shared memory (column split of dW = xᵀ·dy)', async () => {
    // C[M,N] = A[K,M]ᵀ · B[K,N]; the main thread computes columns [0, n0), a worker
    // columns [n0, N) through matmul_ld (row strides stay N), each with its own scratch.
    const M = 96, N = 200, K = 300, n0 = 104;
    arena.reset();
    const rand = rng(42);
    const A = arena.random(K * M, rand), B = arena.random(K * N, rand), C = arena.random(M * N, rand);
    const workerScratch = arena.alloc(KERNEL_SCRATCH_BYTES / 4);
    const module: WasmModule = compileKernels(wasmBytes);
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const { module, memory, scratch, call } = workerData;
       const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
       if (k.set_scratch(scratch.ptr, scratch.bytes) !== 1) throw new Error('scratch rejected');
       k.matmul_ld(...call);
       parentPort.postMessage('done');`,
      {
        eval: true,
        workerData: {
          module, memory,
          scratch: { ptr: workerScratch.byteOffset, bytes: KERNEL_SCRATCH_BYTES },
          call: [C.byteOffset + n0 * 4, N, A.byteOffset, M, B.byteOffset + n0 * 4, N, 0, M, N - n0, K, TRANS_A],
        },
      },
    );
    const done = new Promise<unknown>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    kernels.matmulLd(C.byteOffset, N, A.byteOffset, M, B.byteOffset, N, 0, M, n0, K, TRANS_A);
    assert.equal(await done, 'done');
    await worker.terminate();
    const want = new Float32Array(M * N);
    matmulRef(want, A.slice(), B.slice(), null, M, N, K, TRANS_A);
    for (let i = 0; i < M * N; i++) assert.ok(Math.abs(C[i]! - want[i]!) <= 1e-4, `C[${Math.floor(i / N)}, ${i % N}]`);
  });
});
