// The one list of the WebAssembly kernels (source: ./assembly/, built into dist/kernels.wasm):
// each kernel's TypeScript name, its wasm export and its arguments. The rest is derived from it:
//   - the typed Kernels API, and the check at instantiation that kernels.wasm exports every
//     kernel with that many arguments (./wasmKernels.ts);
//   - the twin of every kernel (./reference.ts, keyed by these names: a kernel without a twin
//     does not compile);
//   - the test that the module exports exactly these functions, with these wasm types
//     (test/kernels.test.ts).
// Adding a kernel: write it in ./assembly/, re-export it from ./assembly/index.ts, list it here,
// give it a twin in ./reference.ts and test the two against each other.

/**
 * How an argument crosses from JS into wasm (each one is a JS number):
 *   ptr  a byte offset into the kernels' memory, 4-byte aligned (a wasm i32 used as u32, so
 *        offsets ≥ 2 GiB work)
 *   i32  a count, a dimension, a row stride or a flag set
 *   f32  a scalar, rounded to float32 by the call
 *   f64  a scalar kept in float64
 */
export type ArgKind = 'ptr' | 'i32' | 'f32' | 'f64';
/** One argument, "name: kind" (the name is the one in the AssemblyScript source). */
export type KernelArg = `${string}: ${ArgKind}`;

export interface KernelSignature {
  /** The function's name among kernels.wasm's exports. */
  readonly wasm: string;
  readonly args: readonly KernelArg[];
  /** void: the kernel only writes memory; i32 / f64: it returns a number of that type. */
  readonly returns: 'void' | 'i32' | 'f64';
}

/**
 * The kernels. Shapes are row-major, in elements; every backward ACCUMULATES into its outputs
 * (as its twin in ../layers.ts does).
 */
export const KERNELS = {
  // ---- matrix products (assembly/gemm.ts) ----
  /** C = op(A)·op(B) (+ bias) with natural row strides; flags and shapes: MatmulFlags. bias is read only with BIAS. */
  matmul: {
    wasm: 'matmul', returns: 'void',
    args: ['c: ptr', 'a: ptr', 'b: ptr', 'bias: ptr', 'M: i32', 'N: i32', 'K: i32', 'flags: i32'],
  },
  /** Same with explicit row strides (elements): C is M rows of stride ldc, A and B as stored. */
  matmulLd: {
    wasm: 'matmul_ld', returns: 'void',
    args: ['c: ptr', 'ldc: i32', 'a: ptr', 'lda: i32', 'b: ptr', 'ldb: i32', 'bias: ptr', 'M: i32', 'N: i32', 'K: i32', 'flags: i32'],
  },

  // ---- elementwise (assembly/math.ts) ----
  /** out[n] = a[n] + b[n] */
  add: { wasm: 'add', returns: 'void', args: ['out: ptr', 'a: ptr', 'b: ptr', 'n: i32'] },
  /** dst[n] += src[n] */
  sumInto: { wasm: 'sum_into', returns: 'void', args: ['dst: ptr', 'src: ptr', 'n: i32'] },
  /** dst[N] += Σ_m src[M,N] (column sums: a bias gradient) */
  colsumInto: { wasm: 'colsum_into', returns: 'void', args: ['dst: ptr', 'src: ptr', 'M: i32', 'N: i32'] },
  /** out[n] = exp(x[n]); max rel. error ~1.5e-7, x ≲ −87 → 0, x ≥ 88.7 → 3.3e38 (no Inf). */
  exp: { wasm: 'exp_f32', returns: 'void', args: ['out: ptr', 'x: ptr', 'n: i32'] },
  /** out[n] = tanh(x[n]); max rel. error ~2e-7. */
  tanh: { wasm: 'tanh_f32', returns: 'void', args: ['out: ptr', 'x: ptr', 'n: i32'] },
  /** out[n] = GELU(inp[n]) (GPT-2's tanh approximation). */
  geluForward: { wasm: 'gelu_forward', returns: 'void', args: ['out: ptr', 'inp: ptr', 'n: i32'] },
  /** dinp[n] += GELU'(inp[n])·dout[n] */
  geluBackward: { wasm: 'gelu_backward', returns: 'void', args: ['dinp: ptr', 'inp: ptr', 'dout: ptr', 'n: i32'] },

  // ---- row-wise (assembly/rowwise.ts) ----
  /**
   * Fused softmax + cross-entropy (+ gradient in place). logits[N,V]; targets[N] int32 (negative:
   * no loss, loss 0, gradient row 0); losses[N] out. gradScale NaN: logits untouched; otherwise
   * logits := (softmax − onehot)·gradScale. Returns Σ losses (float64).
   */
  crossEntropyForwardBackward: {
    wasm: 'cross_entropy_forward_backward', returns: 'f64',
    args: ['logits: ptr', 'losses: ptr', 'targets: ptr', 'N: i32', 'V: i32', 'gradScale: f64'],
  },
  /** x[N,V] row n ·= scales[n] (the mixture loss's per-position gradient weight). */
  scaleRows: { wasm: 'scale_rows', returns: 'void', args: ['x: ptr', 'scales: ptr', 'N: i32', 'V: i32'] },
  /** out[N,C] = (inp − mean)·rstd·weight[C] + bias[C]; saves mean[N], rstd[N]. eps: LAYERNORM_EPS. */
  layernormForward: {
    wasm: 'layernorm_forward', returns: 'void',
    args: ['out: ptr', 'mean: ptr', 'rstd: ptr', 'inp: ptr', 'weight: ptr', 'bias: ptr', 'N: i32', 'C: i32'],
  },
  /** dinp[N,C], dweight[C], dbias[C] += the layernorm gradients (dout[N,C]; inp, weight, mean, rstd as in forward). */
  layernormBackward: {
    wasm: 'layernorm_backward', returns: 'void',
    args: ['dinp: ptr', 'dweight: ptr', 'dbias: ptr', 'dout: ptr', 'inp: ptr', 'weight: ptr', 'mean: ptr', 'rstd: ptr', 'N: i32', 'C: i32'],
  },
  /** In place on one [T,T] block of raw scores: row t = softmax(scale·row[0..t]), zeros after t. */
  causalSoftmaxRows: { wasm: 'causal_softmax_rows', returns: 'void', args: ['att: ptr', 'T: i32', 'scale: f32'] },
  /**
   * [T,T] blocks: dpre[t,j] = scale·att[t,j]·(datt[t,j] − Σ_i att[t,i]·datt[t,i]) for j ≤ t, else 0.
   * dpre may alias datt; datt above the diagonal is never read.
   */
  causalSoftmaxBackwardRows: {
    wasm: 'causal_softmax_backward_rows', returns: 'void',
    args: ['dpre: ptr', 'att: ptr', 'datt: ptr', 'T: i32', 'scale: f32'],
  },

  // ---- attention (assembly/attention.ts) ----
  /**
   * Causal self-attention: qkv[B,T,3C] → out[B,T,C], att[B,NH,T,T] probabilities. Runs matmulLd
   * per (batch, head) on this instance's packing scratch.
   */
  attentionForward: {
    wasm: 'attention_forward', returns: 'void',
    args: ['out: ptr', 'att: ptr', 'qkv: ptr', 'B: i32', 'T: i32', 'C: i32', 'NH: i32'],
  },
  /** Backward of attentionForward: dqkv[B,T,3C] += …; scratch: T·T floats (not the packing scratch). */
  attentionBackward: {
    wasm: 'attention_backward', returns: 'void',
    args: ['dqkv: ptr', 'scratch: ptr', 'dout: ptr', 'qkv: ptr', 'att: ptr', 'B: i32', 'T: i32', 'C: i32', 'NH: i32'],
  },

  // ---- optimizer (assembly/adamw.ts) ----
  /**
   * AdamW on n contiguous params (one tensor or a slice of one), as adamw.adamwUpdateRange:
   * g = grads·gradScale (clip coefficient);  m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²;
   * p = p·decay − stepSize·m/(sqrt(v)/bc2Sqrt + eps), with decay = 1 − lr·wd (or 1 for
   * tensors without decay), stepSize = lr/(1 − b1^t), bc2Sqrt = sqrt(1 − b2^t).
   */
  adamwUpdate: {
    wasm: 'adamw_update', returns: 'void',
    args: [
      'params: ptr', 'grads: ptr', 'm: ptr', 'v: ptr', 'n: i32',
      'beta1: f64', 'beta2: f64', 'eps: f64', 'decay: f64', 'stepSize: f64', 'bc2Sqrt: f64', 'gradScale: f64',
    ],
  },
  /** Σ x[n]² (float64: the global gradient norm). */
  sumSquares: { wasm: 'sum_squares', returns: 'f64', args: ['x: ptr', 'n: i32'] },
} as const satisfies Record<string, KernelSignature>;

/** The module's other exports: each instance's packing scratch (wrapped by createKernels). */
export const SCRATCH_EXPORTS = {
  /** Smallest scratch region (bytes) the module accepts. */
  scratchMinBytes: { wasm: 'scratch_min_bytes', returns: 'i32', args: [] },
  /** Sets this instance's scratch; 1 if accepted (16-byte aligned, ≥ scratchMinBytes), else 0. */
  setScratch: { wasm: 'set_scratch', returns: 'i32', args: ['ptr: ptr', 'bytes: i32'] },
} as const satisfies Record<string, KernelSignature>;

export type KernelName = keyof typeof KERNELS;

type Numbers<A extends readonly unknown[]> = { -readonly [I in keyof A]: number };

/** A wasm export as JS calls it: one number per argument. */
export type WasmFunction<S extends KernelSignature> = (...args: Numbers<S['args']>) => S['returns'] extends 'void' ? void : number;

/** Every kernel, typed from its signature (hover a name for its doc above). */
export type KernelFunctions = { readonly [K in keyof typeof KERNELS]: WasmFunction<(typeof KERNELS)[K]> };
