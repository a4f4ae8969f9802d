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
  scale(out: number, x: number, s: number, n: number): void;
  axpy(y: number, alpha: number, x: number, n: number): void;
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
    scale: raw.scale,
    axpy: raw.axpy,
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
  // The row-wise kernels, with the signatures of their twins in ../layers.ts (Float32Array
  // views of the kernels' memory; targets an Int32Array view), so they drop into an Ops.
  exp(out: Float32Array, x: Float32Array): void;
  tanh(out: Float32Array, x: Float32Array): void;
  crossEntropyForwardBackward(
    logits: Float32Array, losses: Float32Array, targets: Int32Array, N: number, V: number, gradScale: number | null,
  ): number;
  layernormForward(
    out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array,
    N: number, C: number,
  ): void;
  layernormBackward(
    dinp: Float32Array, dweight: Float32Array, dbias: Float32Array,
    dout: Float32Array, inp: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array, N: number, C: number,
  ): void;
  geluForward(out: Float32Array, inp: Float32Array, n: number): void;
  geluBackward(dinp: Float32Array, inp: Float32Array, dout: Float32Array, n: number): void;
  /** att: one [T,T] block (e.g. a subarray of att[B,NH,T,T]). */
  causalSoftmaxRows(att: Float32Array, T: number, scale: number): void;
  causalSoftmaxBackwardRows(dpre: Float32Array, att: Float32Array, datt: Float32Array, T: number, scale: number): void;
  attentionForward(out: Float32Array, att: Float32Array, qkv: Float32Array, B: number, T: number, C: number, NH: number): void;
  /** scratch: at least T·T floats. */
  attentionBackward(
    dqkv: Float32Array, scratch: Float32Array, dout: Float32Array, qkv: Float32Array, att: Float32Array,
    B: number, T: number, C: number, NH: number,
  ): void;
  /** AdamW on params.length elements (see Kernels.adamwUpdate). */
  adamwUpdate(
    params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array,
    beta1: number, beta2: number, eps: number, decay: number, stepSize: number, bc2Sqrt: number, gradScale: number,
  ): void;
  sumSquares(x: Float32Array): number;
}

export function viewKernels(kernels: Kernels): ViewKernels {
  const { memory } = kernels;
  const check = (name: string, v: Float32Array | Int32Array): number => {
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
  const same = (name: string, a: Float32Array | Int32Array, n: number): void => {
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
    exp(out, x) {
      same('x', x, out.length);
      kernels.exp(check('out', out), check('x', x), out.length);
    },
    tanh(out, x) {
      same('x', x, out.length);
      kernels.tanh(check('out', out), check('x', x), out.length);
    },
    crossEntropyForwardBackward(logits, losses, targets, N, V, gradScale) {
      same('logits', logits, N * V);
      same('losses', losses, N);
      same('targets', targets, N);
      for (let n = 0; n < N; n++) {
        if (targets[n]! >= V) throw new RangeError(`targets[${n}] = ${targets[n]} ≥ V = ${V}`);
      }
      return kernels.crossEntropyForwardBackward(check('logits', logits), check('losses', losses), check('targets', targets), N, V, gradScale);
    },
    layernormForward(out, mean, rstd, inp, weight, bias, N, C) {
      for (const [name, v, n] of [['out', out, N * C], ['mean', mean, N], ['rstd', rstd, N], ['inp', inp, N * C], ['weight', weight, C], ['bias', bias, C]] as const) same(name, v, n);
      kernels.layernormForward(check('out', out), check('mean', mean), check('rstd', rstd), check('inp', inp), check('weight', weight), check('bias', bias), N, C);
    },
    layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C) {
      for (const [name, v, n] of [
        ['dinp', dinp, N * C], ['dweight', dweight, C], ['dbias', dbias, C], ['dout', dout, N * C], ['inp', inp, N * C],
        ['weight', weight, C], ['mean', mean, N], ['rstd', rstd, N],
      ] as const) same(name, v, n);
      kernels.layernormBackward(
        check('dinp', dinp), check('dweight', dweight), check('dbias', dbias), check('dout', dout), check('inp', inp),
        check('weight', weight), check('mean', mean), check('rstd', rstd), N, C,
      );
    },
    geluForward(out, inp, n) {
      same('out', out, n);
      same('inp', inp, n);
      kernels.geluForward(check('out', out), check('inp', inp), n);
    },
    geluBackward(dinp, inp, dout, n) {
      same('dinp', dinp, n);
      same('inp', inp, n);
      same('dout', dout, n);
      kernels.geluBackward(check('dinp', dinp), check('inp', inp), check('dout', dout), n);
    },
    causalSoftmaxRows(att, T, scale) {
      same('att', att, T * T);
      kernels.causalSoftmaxRows(check('att', att), T, scale);
    },
    causalSoftmaxBackwardRows(dpre, att, datt, T, scale) {
      same('dpre', dpre, T * T);
      same('att', att, T * T);
      same('datt', datt, T * T);
      kernels.causalSoftmaxBackwardRows(check('dpre', dpre), check('att', att), check('datt', datt), T, scale);
    },
    attentionForward(out, att, qkv, B, T, C, NH) {
      if (C % NH !== 0) throw new RangeError(`C = ${C} is not a multiple of NH = ${NH}`);
      same('out', out, B * T * C);
      same('att', att, B * NH * T * T);
      same('qkv', qkv, B * T * 3 * C);
      kernels.attentionForward(check('out', out), check('att', att), check('qkv', qkv), B, T, C, NH);
    },
    attentionBackward(dqkv, scratch, dout, qkv, att, B, T, C, NH) {
      if (C % NH !== 0) throw new RangeError(`C = ${C} is not a multiple of NH = ${NH}`);
      same('dqkv', dqkv, B * T * 3 * C);
      same('scratch', scratch, T * T);
      same('dout', dout, B * T * C);
      same('qkv', qkv, B * T * 3 * C);
      same('att', att, B * NH * T * T);
      kernels.attentionBackward(check('dqkv', dqkv), check('scratch', scratch), check('dout', dout), check('qkv', qkv), check('att', att), B, T, C, NH);
    },
    adamwUpdate(params, grads, m, v, beta1, beta2, eps, decay, stepSize, bc2Sqrt, gradScale) {
      const n = params.length;
      same('grads', grads, n);
      same('m', m, n);
      same('v', v, n);
      kernels.adamwUpdate(
        check('params', params), check('grads', grads), check('m', m), check('v', v), n,
        beta1, beta2, eps, decay, stepSize, bc2Sqrt, gradScale,
      );
    },
    sumSquares(x) {
      return kernels.sumSquares(check('x', x), x.length);
    },
  };
}
