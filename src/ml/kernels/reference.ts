// Slow, obviously-correct twins of the WebAssembly kernels (./assembly/), used by the tests and
// the benchmarks. Plain loops over typed arrays, float64 accumulators, one rounding per output
// (none into a Float64Array). Same flags and shapes as the fast kernels (MatmulFlags). The
// twins of the model's layers are the layers themselves (../layers.ts, ../adamw.ts); KERNEL_TWINS
// at the end names the twin of every kernel in ./kernelTable.ts.

import type { Floats } from '../layers';
import * as layers from '../layers';
import * as adamw from '../adamw';
import type { KernelName } from './kernelTable';
import { MatmulFlags } from './wasmKernels';

export interface RefStrides {
  lda?: number;
  ldb?: number;
  ldc?: number;
}

/**
 * C[M,N] (=|+=) op(A)·op(B) (+ bias[N]):
 *   op(A)[m,k] = TRANS_A ? A[k·lda + m] : A[m·lda + k]
 *   op(B)[k,n] = TRANS_B ? B[n·ldb + k] : B[k·ldb + n]
 */
export function matmulRef(
  C: Float32Array, A: Float32Array, B: Float32Array, bias: Float32Array | null,
  M: number, N: number, K: number, flags: number, strides: RefStrides = {},
): void {
  const transA = (flags & MatmulFlags.TRANS_A) !== 0;
  const transB = (flags & MatmulFlags.TRANS_B) !== 0;
  const accumulate = (flags & MatmulFlags.ACCUMULATE) !== 0;
  const useBias = (flags & MatmulFlags.BIAS) !== 0 && bias !== null;
  const lda = strides.lda ?? (transA ? M : K);
  const ldb = strides.ldb ?? (transB ? K : N);
  const ldc = strides.ldc ?? N;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0; // float64
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * lda + m]! : A[m * lda + k]!;
        const b = transB ? B[n * ldb + k]! : B[k * ldb + n]!;
        s += a * b;
      }
      if (accumulate) s += C[m * ldc + n]!;
      if (useBias) s += bias[n]!;
      C[m * ldc + n] = s;
    }
  }
}

/** out[i] = a[i] + b[i] */
export function addRef(out: Float32Array, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i]! + b[i]!;
}

/** dst[i] += src[i] */
export function sumIntoRef(dst: Float32Array, src: Float32Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] = dst[i]! + src[i]!;
}

/** dst[N] += Σ_m src[m, 0:N] */
export function colsumIntoRef(dst: Float32Array, src: Float32Array): void {
  const N = dst.length;
  const M = src.length / N;
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let m = 0; m < M; m++) s += src[m * N + n]!;
    dst[n] = dst[n]! + s;
  }
}

/** out[n] = exp(x[n]) */
export function expRef(out: Floats, x: Floats): void {
  for (let i = 0; i < out.length; i++) out[i] = Math.exp(x[i]!);
}

/** out[n] = tanh(x[n]) */
export function tanhRef(out: Floats, x: Floats): void {
  for (let i = 0; i < out.length; i++) out[i] = Math.tanh(x[i]!);
}

/**
 * In place on one [T,T] block of raw scores: row t = softmax over columns 0..t of scale·att[t,·],
 * columns t+1..T−1 set to 0 (and never read). layers.attentionForward's inner loops.
 */
export function causalSoftmaxRowsRef(att: Floats, T: number, scale: number): void {
  for (let t = 0; t < T; t++) {
    const row = t * T;
    let max = -Infinity;
    for (let j = 0; j <= t; j++) max = Math.max(max, scale * att[row + j]!);
    let sum = 0;
    for (let j = 0; j <= t; j++) sum += Math.exp(scale * att[row + j]! - max);
    for (let j = 0; j <= t; j++) att[row + j] = Math.exp(scale * att[row + j]! - max) / sum;
    for (let j = t + 1; j < T; j++) att[row + j] = 0;
  }
}

/**
 * [T,T] blocks: dpre[t,j] = scale·att[t,j]·(datt[t,j] − Σ_{i≤t} att[t,i]·datt[t,i]) for j ≤ t,
 * else 0. dpre may alias datt (a row's sum is taken before the row is written).
 */
export function causalSoftmaxBackwardRowsRef(dpre: Floats, att: Floats, datt: Floats, T: number, scale: number): void {
  for (let t = 0; t < T; t++) {
    const row = t * T;
    let dot = 0;
    for (let j = 0; j <= t; j++) dot += att[row + j]! * datt[row + j]!;
    for (let j = 0; j <= t; j++) dpre[row + j] = scale * att[row + j]! * (datt[row + j]! - dot);
    for (let j = t + 1; j < T; j++) dpre[row + j] = 0;
  }
}

/**
 * The twin of every kernel (a kernel of ./kernelTable.ts without one, or a twin of no kernel, does
 * not compile). Twins take typed arrays where the kernels take offsets, and some infer a count
 * from an array's length; the tests run each pair on the same data.
 */
export const KERNEL_TWINS = {
  matmul: matmulRef,
  matmulLd: matmulRef,
  add: addRef,
  sumInto: sumIntoRef,
  colsumInto: colsumIntoRef,
  exp: expRef,
  tanh: tanhRef,
  geluForward: layers.geluForward,
  geluBackward: layers.geluBackward,
  crossEntropyForwardBackward: layers.crossEntropyForwardBackward,
  scaleRows: layers.scaleRows,
  layernormForward: layers.layernormForward,
  layernormBackward: layers.layernormBackward,
  causalSoftmaxRows: causalSoftmaxRowsRef,
  causalSoftmaxBackwardRows: causalSoftmaxBackwardRowsRef,
  attentionForward: layers.attentionForward,
  attentionBackward: layers.attentionBackward,
  adamwUpdate: adamw.adamwUpdateRange,
  sumSquares: adamw.sumSquares,
} as const satisfies { readonly [K in KernelName]: (...args: never[]) => unknown };
