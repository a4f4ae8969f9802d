// Slow, obviously-correct twins of the WebAssembly kernels (./assembly/index.ts), used by
// the tests and the benchmark. Plain loops over Float32Array, float64 accumulators, one
// rounding to float32 per output. Same flags and shapes as the fast kernels (MatmulFlags).

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
