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
  /** dst[i] += src[i] */
  sumInto(dst: number, src: number, n: number): void;
  /** dst[N] += Σ_m src[m, 0:N]  (src row-major [M,N]) */
  colsumInto(dst: number, src: number, M: number, N: number): void;

  // ---- row-wise / elementwise kernels of a training step. Each matches its plain-TS twin in
  // ../layers.ts or ../adamw.ts (same shapes; every backward ACCUMULATES into its outputs). ----

  /** out[i] = exp(x[i]); max rel. error ~1.5e-7, x ≲ −87 → 0, x ≥ 88.7 → 3.3e38 (no Inf). */
  exp(out: number, x: number, n: number): void;
  /** out[i] = tanh(x[i]); max rel. error ~2e-7. */
  tanh(out: number, x: number, n: number): void;
  /**
   * Fused softmax + cross-entropy (+ gradient in place). logits[N,V], targets[N] int32 (negative:
   * no loss, loss 0, gradient row 0), losses[N] out. gradScale null (or NaN): logits untouched;
   * else logits := (softmax − onehot)·gradScale. Returns Σ losses (float64).
   */
  crossEntropyForwardBackward(logits: number, losses: number, targets: number, N: number, V: number, gradScale: number | null): number;
  /** out[N,C] = (inp − mean)·rstd·weight + bias; mean[N], rstd[N] saved. eps 1e-5. */
  layernormForward(out: number, mean: number, rstd: number, inp: number, weight: number, bias: number, N: number, C: number): void;
  /** dinp[N,C], dweight[C], dbias[C] += the layernorm gradients. */
  layernormBackward(
    dinp: number, dweight: number, dbias: number,
    dout: number, inp: number, weight: number, mean: number, rstd: number, N: number, C: number,
  ): void;
  /** out[i] = GELU(inp[i]) (GPT-2 tanh approximation), i < n. */
  geluForward(out: number, inp: number, n: number): void;
  /** dinp[i] += GELU'(inp[i])·dout[i], i < n. */
  geluBackward(dinp: number, inp: number, dout: number, n: number): void;
  /** In place on a [T,T] block of raw scores: row t = softmax(scale·row[0..t]), zeros after t. */
  causalSoftmaxRows(att: number, T: number, scale: number): void;
  /**
   * [T,T] blocks: dpre[t,t2] = scale·att·(datt − Σ_j att[t,j]·datt[t,j]) for t2 ≤ t, else 0.
   * dpre may alias datt; datt above the diagonal is never read.
   */
  causalSoftmaxBackwardRows(dpre: number, att: number, datt: number, T: number, scale: number): void;
  /**
   * Causal self-attention: qkv[B,T,3C] → out[B,T,C], att[B,NH,T,T] probabilities. Runs
   * matmulLd per (batch, head) on this instance's packing scratch.
   */
  attentionForward(out: number, att: number, qkv: number, B: number, T: number, C: number, NH: number): void;
  /** Backward of attentionForward: dqkv[B,T,3C] += …; scratch: T·T floats (not the packing scratch). */
  attentionBackward(
    dqkv: number, scratch: number, dout: number, qkv: number, att: number, B: number, T: number, C: number, NH: number,
  ): void;
  /**
   * AdamW on n contiguous params (one tensor or a slice of one), as adamw.adamwUpdateRange:
   * g = grads·gradScale (clip coefficient);  m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²;
   * p = p·decay − stepSize·m/(sqrt(v)/bc2Sqrt + eps), with decay = 1 − lr·wd (or 1 for
   * tensors without decay), stepSize = lr/(1 − b1^t), bc2Sqrt = sqrt(1 − b2^t).
   */
  adamwUpdate(
    params: number, grads: number, m: number, v: number, n: number,
    beta1: number, beta2: number, eps: number, decay: number, stepSize: number, bc2Sqrt: number, gradScale: number,
  ): void;
  /** Σ x[i]² over n floats (float64). */
  sumSquares(x: number, n: number): number;
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
  sum_into(dst: number, src: number, n: number): void;
  colsum_into(dst: number, src: number, M: number, N: number): void;
  exp_f32(out: number, x: number, n: number): void;
  tanh_f32(out: number, x: number, n: number): void;
  cross_entropy_forward_backward(logits: number, losses: number, targets: number, N: number, V: number, gradScale: number): number;
  layernorm_forward(out: number, mean: number, rstd: number, inp: number, weight: number, bias: number, N: number, C: number): void;
  layernorm_backward(
    dinp: number, dweight: number, dbias: number,
    dout: number, inp: number, weight: number, mean: number, rstd: number, N: number, C: number,
  ): void;
  gelu_forward(out: number, inp: number, n: number): void;
  gelu_backward(dinp: number, inp: number, dout: number, n: number): void;
  causal_softmax_rows(att: number, T: number, scale: number): void;
  causal_softmax_backward_rows(dpre: number, att: number, datt: number, T: number, scale: number): void;
  attention_forward(out: number, att: number, qkv: number, B: number, T: number, C: number, NH: number): void;
  attention_backward(
    dqkv: number, scratch: number, dout: number, qkv: number, att: number, B: number, T: number, C: number, NH: number,
  ): void;
  adamw_update(
    params: number, grads: number, m: number, v: number, n: number,
    beta1: number, beta2: number, eps: number, decay: number, stepSize: number, bc2Sqrt: number, gradScale: number,
  ): void;
  sum_squares(x: number, n: number): number;
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
    sumInto: raw.sum_into,
    colsumInto: raw.colsum_into,
    exp: raw.exp_f32,
    tanh: raw.tanh_f32,
    crossEntropyForwardBackward: (logits, losses, targets, N, V, gradScale) =>
      raw.cross_entropy_forward_backward(logits, losses, targets, N, V, gradScale ?? NaN),
    layernormForward: raw.layernorm_forward,
    layernormBackward: raw.layernorm_backward,
    geluForward: raw.gelu_forward,
    geluBackward: raw.gelu_backward,
    causalSoftmaxRows: raw.causal_softmax_rows,
    causalSoftmaxBackwardRows: raw.causal_softmax_backward_rows,
    attentionForward: raw.attention_forward,
    attentionBackward: raw.attention_backward,
    adamwUpdate: raw.adamw_update,
    sumSquares: raw.sum_squares,
  };
}
