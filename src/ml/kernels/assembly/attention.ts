// Causal multi-head self-attention in WebAssembly SIMD128. Part of kernels.wasm (entry:
// ./index.ts). One (batch, head) works on a [T,T] block of scores/probabilities; the products
// around the softmax are matmul_ld calls on the strided head slices of qkv[B,T,3C] (q | k | v,
// head h at columns h·hs of each third, row stride 3C), the softmax is rowwise.ts's.

import { ACCUMULATE, matmul_ld, TRANS_A, TRANS_B } from './gemm';
import { softmaxBackRowCausal, softmaxRowCausal } from './rowwise';

// Causal blocking: rows t of a block [i0, i0+ATT_RB) only see keys 0..i0+ATT_RB−1, so each
// product runs on a row block against just that prefix (T = 128: 8 blocks, 56% of the full
// [T,T] work). Smaller blocks save more work but make matmul calls smaller; measured at the
// seed shape (T = 128, hs = 32): 16 ≈ 5% faster than 32, 128 (no blocking) ~40% slower.
const ATT_RB: i32 = 16;

/**
 * Causal multi-head self-attention forward (twin: layers.attentionForward).
 *   qkv[B,T,3C] → out[B,T,C] (overwritten); att[B,NH,T,T] gets the probabilities (row t:
 *   columns 0..t, zeros after). hs = C/NH (NH must divide C); scale = 1/sqrt(hs).
 * Per (b, h), per row block [i0, i0+mb) with nk = i0+mb visible keys:
 *   att[i0:, 0:nk] = q_h[i0:,:]·k_h[0:nk,:]ᵀ;  causal softmax of those rows;
 *   out_h[i0:,:] = att[i0:, 0:nk]·v_h[0:nk,:]
 * Uses matmul_ld, so this instance's packing scratch must be set.
 */
export function attention_forward(out: usize, att: usize, qkv: usize, B: i32, T: i32, C: i32, NH: i32): void {
  const hs = C / NH;
  const scl = <f32>(1.0 / Math.sqrt(<f64>hs));
  const C3 = 3 * C;
  const rowQ = <usize>C3 << 2, rowO = <usize>C << 2, rowA = <usize>T << 2;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const q = qkv + <usize>b * <usize>T * rowQ + (<usize>(h * hs) << 2);
      const k = q + rowO, v = k + rowO;
      const a = att + <usize>(b * NH + h) * <usize>T * rowA;
      const o = out + <usize>b * <usize>T * rowO + (<usize>(h * hs) << 2);
      for (let i0 = 0; i0 < T; i0 += ATT_RB) {
        const mb = min(ATT_RB, T - i0);
        const nk = i0 + mb;
        const ai = a + <usize>i0 * rowA;
        matmul_ld(ai, T, q + <usize>i0 * rowQ, C3, k, C3, 0, mb, nk, hs, TRANS_B);
        for (let t = i0; t < nk; t++) softmaxRowCausal(a + <usize>t * rowA, t + 1, T, scl);
        matmul_ld(o + <usize>i0 * rowO, C, ai, T, v, C3, 0, mb, hs, nk, 0);
      }
    }
  }
}

/**
 * Backward of attention_forward (twin: layers.attentionBackward); dqkv[B,T,3C] accumulates.
 * scratch: T·T floats (the twin needs only T: this one keeps a whole [T,T] dscores block so the
 * products stay matmuls). Per (b, h), with d = dout_h [T,hs]:
 *   datt = d·v_hᵀ (causal row blocks)  → dpre = softmax backward, in place (scale included)
 *   dv_h += attᵀ·d;  dq_h += dpre·k_h;  dk_h += dpreᵀ·q_h
 * Transposed products over the triangle: output rows [j0, j0+mb) of dv_h/dk_h only get
 * contributions from t ≥ j0, so their K range starts at j0 (att/dpre are 0 above the diagonal).
 * Uses matmul_ld, so this instance's packing scratch must be set (and must not overlap `scratch`).
 */
export function attention_backward(
  dqkv: usize, scratch: usize, dout: usize, qkv: usize, att: usize, B: i32, T: i32, C: i32, NH: i32,
): void {
  const hs = C / NH;
  const scl = <f32>(1.0 / Math.sqrt(<f64>hs));
  const C3 = 3 * C;
  const rowQ = <usize>C3 << 2, rowO = <usize>C << 2, rowA = <usize>T << 2;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const headOff = <usize>b * <usize>T * rowQ + (<usize>(h * hs) << 2);
      const q = qkv + headOff, k = q + rowO, v = k + rowO;
      const dq = dqkv + headOff, dk = dq + rowO, dv = dk + rowO;
      const a = att + <usize>(b * NH + h) * <usize>T * rowA;
      const d = dout + <usize>b * <usize>T * rowO + (<usize>(h * hs) << 2);
      const s = scratch;
      for (let i0 = 0; i0 < T; i0 += ATT_RB) {
        const mb = min(ATT_RB, T - i0);
        const nk = i0 + mb;
        matmul_ld(s + <usize>i0 * rowA, T, d + <usize>i0 * rowO, C, v, C3, 0, mb, nk, hs, TRANS_B);
        for (let t = i0; t < nk; t++) {
          const r = <usize>t * rowA;
          softmaxBackRowCausal(s + r, a + r, s + r, t + 1, T, scl);
        }
        // dq_h[i0:] += dpre[i0:, 0:nk]·k_h[0:nk]
        matmul_ld(dq + <usize>i0 * rowQ, C3, s + <usize>i0 * rowA, T, k, C3, 0, mb, hs, nk, ACCUMULATE);
      }
      for (let j0 = 0; j0 < T; j0 += ATT_RB) {
        const mb = min(ATT_RB, T - j0);
        const diag = <usize>j0 * rowA + (<usize>j0 << 2); // element [j0, j0]
        // dv_h[j0:j0+mb] += att[j0:T, j0:j0+mb]ᵀ·d[j0:T]
        matmul_ld(dv + <usize>j0 * rowQ, C3, a + diag, T, d + <usize>j0 * rowO, C, 0, mb, hs, T - j0, TRANS_A | ACCUMULATE);
        // dk_h[j0:j0+mb] += dpre[j0:T, j0:j0+mb]ᵀ·q_h[j0:T]
        matmul_ld(dk + <usize>j0 * rowQ, C3, s + diag, T, q + <usize>j0 * rowQ, C3, 0, mb, hs, T - j0, TRANS_A | ACCUMULATE);
      }
    }
  }
}
