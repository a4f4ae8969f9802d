// Loader and typed API for the WebAssembly SIMD128 kernels (source: ./assembly/index.ts,
// built by esbuild.mjs into dist/kernels.wasm).
//
// Pure layer: no fs here. The caller passes the wasm bytes (or an already compiled module,
// which is what a worker_thread receives via postMessage) and the memory.
//
// Memory model: every tensor lives in ONE shared WebAssembly.Memory created by JS and
// imported by each instance (one instance per worker thread). The kernels take byte
// offsets into it; they allocate nothing. Each instance needs its own packing scratch
// region in that memory (KERNEL_SCRATCH_BYTES is a good size), set at creation.
//
// The project's lib is ES2022 without DOM, so the WebAssembly global has no type
// declarations; the few pieces used are typed structurally below (a real
// WebAssembly.Memory / Module satisfies them).

/** Structural type of a WebAssembly.Memory. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(deltaPages: number): number;
}

/** Opaque compiled module (a WebAssembly.Module); can be posted to worker threads. */
export interface WasmModule {
  readonly __wasmModuleBrand?: never;
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => {
    readonly exports: Record<string, unknown>;
  };
  Memory: new (desc: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Bytes per WebAssembly page. */
export const WASM_PAGE_BYTES = 65536;
/** Largest memory the module declares (65536 pages = 4 GiB, the wasm32 limit). */
export const KERNEL_MAX_PAGES = 65536;
/** Recommended per-instance scratch: tile + packed A block + a 256×~2000 packed B block. */
export const KERNEL_SCRATCH_BYTES = 2 * 1024 * 1024 + 256 * 1024;

/**
 * matmul flags (bit set, combine with |). Shapes (row-major):
 *   0        C[M,N] = A[M,K]  · B[K,N]
 *   TRANS_B  C[M,N] = A[M,K]  · B[N,K]ᵀ
 *   TRANS_A  C[M,N] = A[K,M]ᵀ · B[K,N]
 *   (TRANS_A|TRANS_B also works: A[K,M]ᵀ · B[N,K]ᵀ)
 *   ACCUMULATE: C += … instead of C = …
 *   BIAS:       … + bias[N] on every row (once, also when accumulating)
 */
export const MatmulFlags = {
  NONE: 0,
  TRANS_A: 1,
  TRANS_B: 2,
  ACCUMULATE: 4,
  BIAS: 8,
} as const;

/**
 * The kernels, taking byte offsets into `memory` (all 4-byte aligned) and element counts.
 * Offsets ≥ 2 GiB are fine (passed as i32 bits, used as u32).
 */
export interface Kernels {
  readonly memory: WasmMemory;
  /** Minimum scratch size the module accepts (~136 KB). */
  readonly scratchMinBytes: number;
  /** Replace this instance's packing scratch region (16-byte aligned). Throws if rejected. */
  setScratch(ptr: number, bytes: number): void;
  /** C = A·B (+bias) with natural row strides; see MatmulFlags. bias is ignored without BIAS. */
  matmul(c: number, a: number, b: number, bias: number, M: number, N: number, K: number, flags: number): void;
  /** Same with explicit row strides (elements): C [M rows, stride ldc], A/B as stored. */
  matmulLd(
    c: number, ldc: number, a: number, lda: number, b: number, ldb: number, bias: number,
    M: number, N: number, K: number, flags: number,
  ): void;
  /** out[i] = a[i] + b[i] */
  add(out: number, a: number, b: number, n: number): void;
  /** out[i] = s · x[i] */
  scale(out: number, x: number, s: number, n: number): void;
  /** y[i] += alpha · x[i] */
  axpy(y: number, alpha: number, x: number, n: number): void;
  /** dst[i] += src[i] */
  sumInto(dst: number, src: number, n: number): void;
  /** dst[N] += Σ_m src[m, 0:N]  (src row-major [M,N]) */
  colsumInto(dst: number, src: number, M: number, N: number): void;
}

interface RawExports {
  scratch_min_bytes(): number;
  set_scratch(ptr: number, bytes: number): number;
  matmul(c: number, a: number, b: number, bias: number, M: number, N: number, K: number, flags: number): void;
  matmul_ld(
    c: number, ldc: number, a: number, lda: number, b: number, ldb: number, bias: number,
    M: number, N: number, K: number, flags: number,
  ): void;
  add(out: number, a: number, b: number, n: number): void;
  scale(out: number, x: number, s: number, n: number): void;
  axpy(y: number, alpha: number, x: number, n: number): void;
  sum_into(dst: number, src: number, n: number): void;
  colsum_into(dst: number, src: number, M: number, N: number): void;
}

/** New shared memory suitable for the kernels (sizes in 64 KiB pages). */
export function createKernelMemory(initialPages: number, maximumPages: number): WasmMemory {
  if (maximumPages > KERNEL_MAX_PAGES) throw new RangeError(`maximumPages ${maximumPages} > ${KERNEL_MAX_PAGES}`);
  return new WA.Memory({ initial: initialPages, maximum: maximumPages, shared: true });
}

/** Compile the kernels once (e.g. on the main thread) to share the module with workers. */
export function compileKernels(wasmBytes: Uint8Array): WasmModule {
  return new WA.Module(wasmBytes);
}

/**
 * Instantiate the kernels on `memory` (must be shared, maximum ≤ 65536 pages) with the
 * packing scratch [scratch.ptr, scratch.ptr + scratch.bytes) inside it. Synchronous.
 */
export function createKernels(
  wasm: Uint8Array | WasmModule,
  memory: WasmMemory,
  scratch: { ptr: number; bytes: number },
): Kernels {
  if (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(
      'kernels.wasm imports a *shared* memory: create it with createKernelMemory() or ' +
        'new WebAssembly.Memory({ initial, maximum, shared: true })',
    );
  }
  const module = wasm instanceof Uint8Array ? new WA.Module(wasm) : wasm;
  const raw = new WA.Instance(module, { env: { memory } }).exports as unknown as RawExports;
  const scratchMinBytes = raw.scratch_min_bytes();
  const setScratch = (ptr: number, bytes: number): void => {
    const end = ptr + bytes;
    if (end > memory.buffer.byteLength || ptr < 0) {
      throw new RangeError(`scratch [${ptr}, ${end}) is outside memory (${memory.buffer.byteLength} bytes)`);
    }
    if (raw.set_scratch(ptr, bytes) !== 1) {
      throw new RangeError(`scratch rejected: ptr ${ptr} must be 16-byte aligned and bytes ${bytes} ≥ ${scratchMinBytes}`);
    }
  };
  setScratch(scratch.ptr, scratch.bytes);
  return {
    memory,
    scratchMinBytes,
    setScratch,
    matmul: raw.matmul,
    matmulLd: raw.matmul_ld,
    add: raw.add,
    scale: raw.scale,
    axpy: raw.axpy,
    sumInto: raw.sum_into,
    colsumInto: raw.colsum_into,
  };
}

// ---------------------------------------------------------------------------------------
// Convenience layer over Float32Array views of the kernels' memory. Checks that each view
// is on that memory (views made before a memory.grow are on the old, shorter buffer and are
// refused: re-create them) and that it is long enough for the stated shape.

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
  /** Row strides in elements; default: the natural (dense) ones. */
  lda?: number;
  ldb?: number;
  ldc?: number;
}

export interface ViewKernels {
  readonly kernels: Kernels;
  /** C[M,N] (=|+=) op(A)·op(B) (+ bias[N]); shapes as in MatmulFlags. */
  matmul(
    C: Float32Array, A: Float32Array, B: Float32Array, bias: Float32Array | null,
    M: number, N: number, K: number, opts?: MatmulOptions,
  ): void;
  add(out: Float32Array, a: Float32Array, b: Float32Array): void;
  scale(out: Float32Array, x: Float32Array, s: number): void;
  axpy(y: Float32Array, alpha: number, x: Float32Array): void;
  sumInto(dst: Float32Array, src: Float32Array): void;
  /** dst[N] += column sums of src viewed as [src.length / N, N]. */
  colsumInto(dst: Float32Array, src: Float32Array): void;
}

export function viewKernels(kernels: Kernels): ViewKernels {
  const { memory } = kernels;
  const check = (name: string, v: Float32Array): number => {
    if (v.buffer !== memory.buffer) {
      throw new Error(
        `${name}: Float32Array is not a view on the kernels' memory ` +
          '(or it predates a memory.grow: re-create views after growing)',
      );
    }
    return v.byteOffset;
  };
  // A stored matrix of `rows` rows with `cols` used columns and row stride ld must fit.
  const fits = (name: string, v: Float32Array, rows: number, cols: number, ld: number): void => {
    if (ld < cols) throw new RangeError(`${name}: row stride ${ld} < ${cols} columns`);
    const need = rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0;
    if (v.length < need) throw new RangeError(`${name}: length ${v.length} < ${need} needed for [${rows}, ${cols}] (stride ${ld})`);
  };
  const same = (name: string, a: Float32Array, n: number): void => {
    if (a.length < n) throw new RangeError(`${name}: length ${a.length} < ${n}`);
  };
  return {
    kernels,
    matmul(C, A, B, bias, M, N, K, opts = {}) {
      const transA = opts.transA === true;
      const transB = opts.transB === true;
      const lda = opts.lda ?? (transA ? M : K);
      const ldb = opts.ldb ?? (transB ? K : N);
      const ldc = opts.ldc ?? N;
      fits('C', C, M, N, ldc);
      if (transA) fits('A', A, K, M, lda);
      else fits('A', A, M, K, lda);
      if (transB) fits('B', B, N, K, ldb);
      else fits('B', B, K, N, ldb);
      let flags = (transA ? MatmulFlags.TRANS_A : 0) | (transB ? MatmulFlags.TRANS_B : 0);
      if (opts.accumulate === true) flags |= MatmulFlags.ACCUMULATE;
      let biasPtr = 0;
      if (bias !== null) {
        same('bias', bias, N);
        biasPtr = check('bias', bias);
        flags |= MatmulFlags.BIAS;
      }
      kernels.matmulLd(check('C', C), ldc, check('A', A), lda, check('B', B), ldb, biasPtr, M, N, K, flags);
    },
    add(out, a, b) {
      same('a', a, out.length);
      same('b', b, out.length);
      kernels.add(check('out', out), check('a', a), check('b', b), out.length);
    },
    scale(out, x, s) {
      same('x', x, out.length);
      kernels.scale(check('out', out), check('x', x), s, out.length);
    },
    axpy(y, alpha, x) {
      same('x', x, y.length);
      kernels.axpy(check('y', y), alpha, check('x', x), y.length);
    },
    sumInto(dst, src) {
      same('src', src, dst.length);
      kernels.sumInto(check('dst', dst), check('src', src), dst.length);
    },
    colsumInto(dst, src) {
      const N = dst.length;
      if (N === 0 || src.length % N !== 0) throw new RangeError(`src length ${src.length} is not a multiple of ${N}`);
      kernels.colsumInto(check('dst', dst), check('src', src), src.length / N, N);
    },
  };
}
