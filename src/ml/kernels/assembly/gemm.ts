// Matrix products: C = op(A)·op(B) (+ bias) in WebAssembly SIMD128, plus the packing scratch
// each instance needs. Part of kernels.wasm (entry: ./index.ts).
//
// matmul covers the three products a GPT-2 forward/backward pass needs (W is stored in the
// HF Conv1D layout W[in, out], so a Linear is y = x @ W + b):
//   flags = 0          C[M,N] = A[M,K] · B[K,N]      forward  y  = x @ W          (B = W)
//   flags = TRANS_B    C[M,N] = A[M,K] · B[N,K]ᵀ     backward dx = dy @ Wᵀ        (B = W[in,out], N = in)
//   flags = TRANS_A    C[M,N] = A[K,M]ᵀ · B[K,N]     backward dW = xᵀ @ dy        (A = x[BT,in], K = BT)
// plus ACCUMULATE (C += ... instead of C = ..., e.g. gradient accumulation over micro-batches)
// and BIAS (+ bias[N] broadcast over rows; applied once, with or without ACCUMULATE).
//
// Algorithm (the BLIS/GotoBLAS loop nest; llm.c's CPU matmul is the un-packed cousin):
//   for jc over N in blocks of nc      (nc as large as the scratch allows)
//     for pc over K in blocks of KC    pack B[pc:pc+kc, jc:jc+nc] into kc×8 column panels
//       for ic over M in blocks of MC  pack A[ic:ic+mc, pc:pc+kc] into 4×kc row panels
//         for jr over nc step 8        (one B panel, 8 KB, stays in L1)
//           for ir over mc step 4      (A panels stream from L2)
//             4×8 micro-kernel: 8 f32x4 accumulators, K innermost, C tile read/written once
// Transposes cost nothing in the hot loop: they are absorbed by the packing routines, which
// always produce the same panel layout. Ragged edges: panels are zero-padded, and a partial
// C tile goes through a 4×8 staging tile in scratch, so M, N, K may be anything ≥ 1.
// M < 4 (one token at inference) skips packing: each row is a streamed vector × matrix.

// ---------------------------------------------------------------------------------------
// flags for matmul / matmul_ld (mirrored in ../wasmKernels.ts; attention.ts uses them too)
export const TRANS_A: i32 = 1;
export const TRANS_B: i32 = 2;
export const ACCUMULATE: i32 = 4;
export const BIAS: i32 = 8;

// Register / cache blocking. MR×NR = 4×8 floats of C live in 8 v128 registers (x64 has 16
// xmm registers: 8 accumulators + 2 B vectors + 1 A broadcast + temporaries).
const MR: i32 = 4;
const NR: i32 = 8;
// KC: depth of one packed block. One A panel (4×KC×4 B = 4 KB) plus one B panel (8×KC×4 B =
// 8 KB) sit comfortably in a 48 KB L1d.
const KC: i32 = 256;
// MC: rows of A packed at once; MC×KC×4 B = 128 KB stays in the 1 MB L2 while every B panel
// of the block sweeps over it.
const MC: i32 = 128;

// Scratch layout (caller-provided region, see set_scratch):
//   [0, 128)                      staging tile for partial C tiles, 4×8 floats
//   [128, 128 + MC·KC·4)          packed A block: ceil(mc/4) panels of kc×4 floats
//   [128 + MC·KC·4, size)         packed B block: ceil(nc/8) panels of kc×8 floats
// (the M < 4 path reuses the packed-A region for one contiguous row of op(A), K ≤ MC·KC)
const TILE_BYTES: usize = <usize>(MR * NR * 4);
const PACK_A_BYTES: usize = <usize>(MC * KC * 4);
const MIN_PACK_B_BYTES: usize = <usize>(KC * NR * 4);

let scratchBase: usize = 0;
let scratchSize: usize = 0;

/** Smallest scratch region matmul accepts (128 + 128 KB + 8 KB). */
export function scratch_min_bytes(): usize {
  return TILE_BYTES + PACK_A_BYTES + MIN_PACK_B_BYTES;
}

/**
 * Sets this instance's packing scratch: [ptr, ptr + bytes), 16-byte aligned, at least
 * scratch_min_bytes(). More scratch lets B be packed in wider blocks (fewer re-packs of A);
 * ~2 MB is plenty. Each instance (= each worker) needs its own region. Returns 1 if
 * accepted, 0 if rejected (then matmul traps until a valid region is set).
 */
export function set_scratch(ptr: usize, bytes: usize): i32 {
  if ((ptr & 15) != 0 || bytes < scratch_min_bytes()) {
    scratchBase = 0;
    scratchSize = 0;
    return 0;
  }
  scratchBase = ptr;
  scratchSize = bytes;
  return 1;
}

/** C = A·B with natural leading dimensions (see matmul_ld for the shapes and flags). */
export function matmul(c: usize, a: usize, b: usize, bias: usize, M: i32, N: i32, K: i32, flags: i32): void {
  const lda = (flags & TRANS_A) != 0 ? M : K; // A is [K,M] or [M,K]
  const ldb = (flags & TRANS_B) != 0 ? K : N; // B is [N,K] or [K,N]
  matmul_ld(c, N, a, lda, b, ldb, bias, M, N, K, flags);
}

/**
 * General form with leading dimensions (row strides, in elements) so sub-matrices can be
 * used in place, e.g. one attention head q_h = qkv[:, h·hs : (h+1)·hs] with lda = 3C.
 *   C: M rows of N, row stride ldc ≥ N
 *   A: flags&TRANS_A ? K rows of M (stride lda ≥ M) : M rows of K (stride lda ≥ K)
 *   B: flags&TRANS_B ? N rows of K (stride ldb ≥ K) : K rows of N (stride ldb ≥ N)
 *   bias: N floats, read only if flags&BIAS
 * C must not overlap A, B or bias. K = 0 is allowed (C = C or 0, plus bias).
 */
export function matmul_ld(
  c: usize, ldc: i32, a: usize, lda: i32, b: usize, ldb: i32, bias: usize,
  M: i32, N: i32, K: i32, flags: i32,
): void {
  if (M <= 0 || N <= 0) return;
  if (scratchSize == 0) unreachable(); // set_scratch was never (successfully) called
  const transA = (flags & TRANS_A) != 0;
  const transB = (flags & TRANS_B) != 0;
  const accumulate = (flags & ACCUMULATE) != 0;
  const hasBias = (flags & BIAS) != 0;
  if (K <= 0) {
    initC(c, ldc, bias, M, N, accumulate, hasBias);
    return;
  }
  if (M < MR && K <= GEMV_MAX_K) {
    // 1–3 rows (one token at inference with a KV cache): a 4×8 tile would be ≥ 3/4 padding
    // and packing B would cost as much as the product. Stream B once per row instead.
    gemvRows(c, ldc, a, lda, transA, b, ldb, transB, bias, M, N, K, accumulate, hasBias);
    return;
  }

  const tile = scratchBase;
  const packA_ = tile + TILE_BYTES;
  const packB_ = packA_ + PACK_A_BYTES;
  const ldcB = <usize>ldc << 2;

  // Widest B block the scratch holds at this depth (multiple of NR), capped at N rounded up.
  const kcMax = min(K, KC);
  let nc = <i32>((scratchSize - TILE_BYTES - PACK_A_BYTES) / <usize>(kcMax * NR * 4)) * NR;
  nc = min(nc, (N + NR - 1) & ~(NR - 1));

  for (let jc = 0; jc < N; jc += nc) {
    const ncur = min(nc, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      // The first K block decides C's initial value (0 or old C, + bias); later blocks add.
      const loadC = pc > 0 || accumulate;
      const addBias = pc == 0 && hasBias;
      packB(b, ldb, transB, pc, jc, kc, ncur, packB_);
      for (let ic = 0; ic < M; ic += MC) {
        const mcur = min(MC, M - ic);
        packA(a, lda, transA, ic, pc, mcur, kc, packA_);
        for (let jr = 0; jr < ncur; jr += NR) {
          const nr = min(NR, ncur - jr);
          const pb = packB_ + <usize>(jr * kc) * 4; // panel jr/8, kc×8 floats each
          const biasJ = bias + (<usize>(jc + jr) << 2);
          let cp = c + <usize>ic * ldcB + (<usize>(jc + jr) << 2);
          for (let ir = 0; ir < mcur; ir += MR) {
            const mr = min(MR, mcur - ir);
            const pa = packA_ + <usize>(ir * kc) * 4; // panel ir/4, kc×4 floats each
            if (mr == MR && nr == NR) {
              kernel4x8(pa, pb, kc, cp, ldcB, loadC, addBias, biasJ);
            } else {
              kernelEdge(pa, pb, kc, cp, ldcB, mr, nr, loadC, addBias, biasJ, tile);
            }
            cp += ldcB * MR;
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Micro-kernel: C[4,8] (= or +=) Σ_k Apanel[k,0:4]ᵀ ⊗ Bpanel[k,0:8]
//   pa: packed A panel, kc×4 floats, element (k, r) at pa + (k·4 + r)·4
//   pb: packed B panel, kc×8 floats, element (k, j) at pb + (k·8 + j)·4
//   cp: C tile (row stride ldc bytes); read first iff loadC; bias[0:8] added iff addBias
// Per k: 2 B loads, 4 A broadcasts (v128.load32_splat → vbroadcastss), 8 mul + 8 add.
// Mul and add are separate ops: SIMD128 has no FMA (relaxed-SIMD's madd bought nothing here).
@inline
function kernel4x8(pa: usize, pb: usize, kc: i32, cp: usize, ldc: usize, loadC: bool, addBias: bool, bias: usize): void {
  const cp1 = cp + ldc;
  const cp2 = cp1 + ldc;
  const cp3 = cp2 + ldc;
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  if (loadC) {
    c00 = v128.load(cp); c01 = v128.load(cp, 16);
    c10 = v128.load(cp1); c11 = v128.load(cp1, 16);
    c20 = v128.load(cp2); c21 = v128.load(cp2, 16);
    c30 = v128.load(cp3); c31 = v128.load(cp3, 16);
  }
  if (addBias) {
    const bb0 = v128.load(bias), bb1 = v128.load(bias, 16);
    c00 = f32x4.add(c00, bb0); c01 = f32x4.add(c01, bb1);
    c10 = f32x4.add(c10, bb0); c11 = f32x4.add(c11, bb1);
    c20 = f32x4.add(c20, bb0); c21 = f32x4.add(c21, bb1);
    c30 = f32x4.add(c30, bb0); c31 = f32x4.add(c31, bb1);
  }
  // Deliberately NOT unrolled: binaryen (-O3) folds an unrolled body into one expression
  // tree per accumulator, hoisting all 8 B vectors and 16 A broadcasts ahead of the math;
  // 24+ live v128 values then spill out of the 16 xmm registers (measured 36 vs 62 GFLOPS).
  // One k per iteration keeps 8 accumulators + 2 B + 1 A + 1 product live.
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = f32x4.add(c00, f32x4.mul(a, b0)); c01 = f32x4.add(c01, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 4);
    c10 = f32x4.add(c10, f32x4.mul(a, b0)); c11 = f32x4.add(c11, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 8);
    c20 = f32x4.add(c20, f32x4.mul(a, b0)); c21 = f32x4.add(c21, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 12);
    c30 = f32x4.add(c30, f32x4.mul(a, b0)); c31 = f32x4.add(c31, f32x4.mul(a, b1));
    pa += 16;
    pb += 32;
  }
  v128.store(cp, c00); v128.store(cp, c01, 16);
  v128.store(cp1, c10); v128.store(cp1, c11, 16);
  v128.store(cp2, c20); v128.store(cp2, c21, 16);
  v128.store(cp3, c30); v128.store(cp3, c31, 16);
}

// Partial tile (mr < 4 rows and/or nr < 8 columns of C are real): stage C (+bias) into a
// full 4×8 tile in scratch, run the same micro-kernel on it, copy the real part back.
// The zero-padded panels make the padding rows/columns harmless.
function kernelEdge(
  pa: usize, pb: usize, kc: i32, cp: usize, ldc: usize, mr: i32, nr: i32,
  loadC: bool, addBias: bool, bias: usize, tile: usize,
): void {
  for (let r = 0; r < MR; r++) {
    const crow = cp + <usize>r * ldc;
    const trow = tile + <usize>(r * NR * 4);
    for (let j = 0; j < NR; j++) {
      let v: f32 = 0;
      if (r < mr && j < nr) {
        if (loadC) v = load<f32>(crow + (<usize>j << 2));
        if (addBias) v += load<f32>(bias + (<usize>j << 2));
      }
      store<f32>(trow + (<usize>j << 2), v);
    }
  }
  kernel4x8(pa, pb, kc, tile, <usize>(NR * 4), true, false, 0);
  for (let r = 0; r < mr; r++) {
    const crow = cp + <usize>r * ldc;
    const trow = tile + <usize>(r * NR * 4);
    for (let j = 0; j < nr; j++) {
      store<f32>(crow + (<usize>j << 2), load<f32>(trow + (<usize>j << 2)));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Packing. Output layout is independent of the transpose flags.

// A block: rows i0..i0+mc, depth k0..k0+kc → ceil(mc/4) panels; panel p holds
// dst[p·kc·4 + k·4 + r] = A(i0 + 4p + r, k0 + k), zero for rows ≥ mc.
//   !transA: A(m, k) at a + (m·lda + k)·4   → 4 rows read in parallel, 4×4 SIMD transposes
//    transA: A(m, k) at a + (k·lda + m)·4   → packAT: one v128 copy per (k, panel)
function packA(a: usize, lda: i32, transA: bool, i0: i32, k0: i32, mc: i32, kc: i32, dst: usize): void {
  const ldaB = <usize>lda << 2;
  if (transA) {
    packAT(a, ldaB, i0, k0, mc, kc, dst);
    return;
  }
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min(MR, mc - ir);
    let d = dst + <usize>(ir * kc) * 4;
    const r0 = a + <usize>(i0 + ir) * ldaB + (<usize>k0 << 2);
    if (mr == MR) {
      const r1 = r0 + ldaB, r2 = r1 + ldaB, r3 = r2 + ldaB;
      let k = 0;
      for (; k + 4 <= kc; k += 4) {
        const off = <usize>k << 2;
        const x0 = v128.load(r0 + off), x1 = v128.load(r1 + off);
        const x2 = v128.load(r2 + off), x3 = v128.load(r3 + off);
        const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5); // a0k0 a1k0 a0k1 a1k1
        const t1 = f32x4.shuffle(x2, x3, 0, 4, 1, 5); // a2k0 a3k0 a2k1 a3k1
        const t2 = f32x4.shuffle(x0, x1, 2, 6, 3, 7); // a0k2 a1k2 a0k3 a1k3
        const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7); // a2k2 a3k2 a2k3 a3k3
        v128.store(d, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
        v128.store(d, f32x4.shuffle(t0, t1, 2, 3, 6, 7), 16);
        v128.store(d, f32x4.shuffle(t2, t3, 0, 1, 4, 5), 32);
        v128.store(d, f32x4.shuffle(t2, t3, 2, 3, 6, 7), 48);
        d += 64;
      }
      for (; k < kc; k++) {
        const off = <usize>k << 2;
        store<f32>(d, load<f32>(r0 + off));
        store<f32>(d, load<f32>(r1 + off), 4);
        store<f32>(d, load<f32>(r2 + off), 8);
        store<f32>(d, load<f32>(r3 + off), 12);
        d += 16;
      }
    } else {
      for (let k = 0; k < kc; k++) {
        for (let r = 0; r < MR; r++) {
          const v: f32 = r < mr ? load<f32>(r0 + <usize>r * ldaB + (<usize>k << 2)) : 0;
          store<f32>(d + (<usize>r << 2), v);
        }
        d += 16;
      }
    }
  }
}

// transA: the stored A is [K, M], so row k of it holds A(i0 .. i0+mc, k) contiguously.
// Copy in chunks of PACK_KB rows of k: per panel, PACK_KB 16-byte reads (the chunk's rows
// stay in L1 across panels) and one contiguous 16·PACK_KB-byte write. Measured on the dW
// shapes: walking k outermost (scattering every store 4 KB apart, i.e. into one L1 set) is
// ~10% slower overall; chunks of 4..256 rows are within noise of each other.
const PACK_KB: i32 = 16;

function packAT(a: usize, ldaB: usize, i0: i32, k0: i32, mc: i32, kc: i32, dst: usize): void {
  const full = mc & ~(MR - 1); // rows in complete panels
  for (let kb = 0; kb < kc; kb += PACK_KB) {
    const kn = min(PACK_KB, kc - kb);
    const rowKb = a + <usize>(k0 + kb) * ldaB + (<usize>i0 << 2);
    for (let ir = 0; ir < full; ir += MR) {
      let s = rowKb + (<usize>ir << 2);
      let d = dst + <usize>(ir * kc + kb * MR) * 4;
      for (let k = 0; k < kn; k++) {
        v128.store(d, v128.load(s));
        s += ldaB;
        d += 16;
      }
    }
    if (full < mc) {
      let s = rowKb + (<usize>full << 2);
      let d = dst + <usize>(full * kc + kb * MR) * 4;
      for (let k = 0; k < kn; k++) {
        for (let r = 0; r < MR; r++) {
          const v: f32 = full + r < mc ? load<f32>(s + (<usize>r << 2)) : 0;
          store<f32>(d + (<usize>r << 2), v);
        }
        s += ldaB;
        d += 16;
      }
    }
  }
}

// B block: depth k0..k0+kc, columns j0..j0+nc → ceil(nc/8) panels; panel q holds
// dst[q·kc·8 + k·8 + j] = B(k0 + k, j0 + 8q + j), zero for columns ≥ nc.
//   !transB: B(k, n) at b + (k·ldb + n)·4   → packBN: two v128 copies per (k, panel)
//    transB: B(k, n) at b + (n·ldb + k)·4   → 8 rows read in parallel, two 4×4 transposes
function packB(b: usize, ldb: i32, transB: bool, k0: i32, j0: i32, kc: i32, nc: i32, dst: usize): void {
  const ldbB = <usize>ldb << 2;
  if (!transB) {
    packBN(b, ldbB, k0, j0, kc, nc, dst);
    return;
  }
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    let d = dst + <usize>(jr * kc) * 4;
    const s0 = b + <usize>(j0 + jr) * ldbB + (<usize>k0 << 2);
    if (nr == NR) {
      for (let h = 0; h < 2; h++) {
        // columns 4h..4h+3 of the panel come from rows 4h..4h+3 of the stored B[N,K]
        const r0 = s0 + <usize>(4 * h) * ldbB;
        const r1 = r0 + ldbB, r2 = r1 + ldbB, r3 = r2 + ldbB;
        let dh = d + (<usize>h << 4);
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          const off = <usize>k << 2;
          const x0 = v128.load(r0 + off), x1 = v128.load(r1 + off);
          const x2 = v128.load(r2 + off), x3 = v128.load(r3 + off);
          const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
          const t1 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
          const t2 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
          const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
          v128.store(dh, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
          v128.store(dh, f32x4.shuffle(t0, t1, 2, 3, 6, 7), 32);
          v128.store(dh, f32x4.shuffle(t2, t3, 0, 1, 4, 5), 64);
          v128.store(dh, f32x4.shuffle(t2, t3, 2, 3, 6, 7), 96);
          dh += 128;
        }
        for (; k < kc; k++) {
          const off = <usize>k << 2;
          store<f32>(dh, load<f32>(r0 + off));
          store<f32>(dh, load<f32>(r1 + off), 4);
          store<f32>(dh, load<f32>(r2 + off), 8);
          store<f32>(dh, load<f32>(r3 + off), 12);
          dh += 32;
        }
      }
    } else {
      for (let k = 0; k < kc; k++) {
        for (let j = 0; j < NR; j++) {
          const v: f32 = j < nr ? load<f32>(s0 + <usize>j * ldbB + (<usize>k << 2)) : 0;
          store<f32>(d + (<usize>j << 2), v);
        }
        d += 32;
      }
    }
  }
}

// !transB: row k of the stored B[K, N] holds B(k, j0 .. j0+nc) contiguously; copied in
// chunks of PACK_KB rows like packAT, 32 bytes per (k, panel).
function packBN(b: usize, ldbB: usize, k0: i32, j0: i32, kc: i32, nc: i32, dst: usize): void {
  const full = nc & ~(NR - 1); // columns in complete panels
  for (let kb = 0; kb < kc; kb += PACK_KB) {
    const kn = min(PACK_KB, kc - kb);
    const rowKb = b + <usize>(k0 + kb) * ldbB + (<usize>j0 << 2);
    for (let jr = 0; jr < full; jr += NR) {
      let s = rowKb + (<usize>jr << 2);
      let d = dst + <usize>(jr * kc + kb * NR) * 4;
      for (let k = 0; k < kn; k++) {
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
        s += ldbB;
        d += 32;
      }
    }
    if (full < nc) {
      let s = rowKb + (<usize>full << 2);
      let d = dst + <usize>(full * kc + kb * NR) * 4;
      for (let k = 0; k < kn; k++) {
        for (let j = 0; j < NR; j++) {
          const v: f32 = full + j < nc ? load<f32>(s + (<usize>j << 2)) : 0;
          store<f32>(d + (<usize>j << 2), v);
        }
        s += ldbB;
        d += 32;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Small-M path: each row of C is a vector-matrix product y[N] = x[K] · op(B) (+ bias),
// with x = op(A)[m, :] first gathered into scratch so it is contiguous.

// x must fit the packed-A region of the scratch.
const GEMV_MAX_K: i32 = MC * KC;

function gemvRows(
  c: usize, ldc: i32, a: usize, lda: i32, transA: bool, b: usize, ldb: i32, transB: bool, bias: usize,
  M: i32, N: i32, K: i32, accumulate: bool, hasBias: bool,
): void {
  const x = scratchBase + TILE_BYTES; // K floats
  const ldaB = <usize>lda << 2;
  const ldbB = <usize>ldb << 2;
  for (let m = 0; m < M; m++) {
    // x[k] = op(A)[m, k]: A[m·lda + k], or A[k·lda + m] when transposed
    const src = transA ? a + (<usize>m << 2) : a + <usize>m * ldaB;
    const inc: usize = transA ? ldaB : 4;
    for (let k = 0; k < K; k++) store<f32>(x + (<usize>k << 2), load<f32>(src + <usize>k * inc));
    const crow = c + <usize>m * (<usize>ldc << 2);
    if (transB) gemvT(crow, x, b, ldbB, N, K, accumulate, hasBias, bias);
    else gemvN(crow, x, b, ldbB, N, K, accumulate, hasBias, bias);
  }
}

// y[0:N] (=|+=) Σ_k x[k]·B[k, 0:N] (+ bias), B stored [K, N] with row stride ldbB bytes.
// Strips of 32 columns: 8 f32x4 accumulators, one x broadcast per k, B rows streamed.
function gemvN(y: usize, x: usize, b: usize, ldbB: usize, N: i32, K: i32, loadC: bool, hasBias: bool, bias: usize): void {
  let j = 0;
  for (; j + 32 <= N; j += 32) {
    const yj = y + (<usize>j << 2);
    let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
    let y4 = f32x4.splat(0), y5 = f32x4.splat(0), y6 = f32x4.splat(0), y7 = f32x4.splat(0);
    if (loadC) {
      y0 = v128.load(yj); y1 = v128.load(yj, 16); y2 = v128.load(yj, 32); y3 = v128.load(yj, 48);
      y4 = v128.load(yj, 64); y5 = v128.load(yj, 80); y6 = v128.load(yj, 96); y7 = v128.load(yj, 112);
    }
    if (hasBias) {
      const bj = bias + (<usize>j << 2);
      y0 = f32x4.add(y0, v128.load(bj)); y1 = f32x4.add(y1, v128.load(bj, 16));
      y2 = f32x4.add(y2, v128.load(bj, 32)); y3 = f32x4.add(y3, v128.load(bj, 48));
      y4 = f32x4.add(y4, v128.load(bj, 64)); y5 = f32x4.add(y5, v128.load(bj, 80));
      y6 = f32x4.add(y6, v128.load(bj, 96)); y7 = f32x4.add(y7, v128.load(bj, 112));
    }
    let bp = b + (<usize>j << 2);
    let xp = x;
    for (let k = 0; k < K; k++) {
      const xs = v128.load32_splat(xp);
      y0 = f32x4.add(y0, f32x4.mul(xs, v128.load(bp))); y1 = f32x4.add(y1, f32x4.mul(xs, v128.load(bp, 16)));
      y2 = f32x4.add(y2, f32x4.mul(xs, v128.load(bp, 32))); y3 = f32x4.add(y3, f32x4.mul(xs, v128.load(bp, 48)));
      y4 = f32x4.add(y4, f32x4.mul(xs, v128.load(bp, 64))); y5 = f32x4.add(y5, f32x4.mul(xs, v128.load(bp, 80)));
      y6 = f32x4.add(y6, f32x4.mul(xs, v128.load(bp, 96))); y7 = f32x4.add(y7, f32x4.mul(xs, v128.load(bp, 112)));
      bp += ldbB;
      xp += 4;
    }
    v128.store(yj, y0); v128.store(yj, y1, 16); v128.store(yj, y2, 32); v128.store(yj, y3, 48);
    v128.store(yj, y4, 64); v128.store(yj, y5, 80); v128.store(yj, y6, 96); v128.store(yj, y7, 112);
  }
  for (; j + 4 <= N; j += 4) {
    const yj = y + (<usize>j << 2);
    let acc = loadC ? v128.load(yj) : f32x4.splat(0);
    if (hasBias) acc = f32x4.add(acc, v128.load(bias + (<usize>j << 2)));
    let bp = b + (<usize>j << 2);
    for (let k = 0; k < K; k++) {
      acc = f32x4.add(acc, f32x4.mul(v128.load32_splat(x + (<usize>k << 2)), v128.load(bp)));
      bp += ldbB;
    }
    v128.store(yj, acc);
  }
  for (; j < N; j++) {
    const yj = y + (<usize>j << 2);
    let acc: f32 = loadC ? load<f32>(yj) : 0;
    if (hasBias) acc += load<f32>(bias + (<usize>j << 2));
    let bp = b + (<usize>j << 2);
    for (let k = 0; k < K; k++) {
      acc += load<f32>(x + (<usize>k << 2)) * load<f32>(bp);
      bp += ldbB;
    }
    store<f32>(yj, acc);
  }
}

// y[n] (=|+=) Σ_k x[k]·B[n, k] (+ bias[n]), B stored [N, K] with row stride ldbB bytes:
// dot products, 4 rows of B at a time (4 lane-wise accumulators, then a 4×4 reduction).
function gemvT(y: usize, x: usize, b: usize, ldbB: usize, N: i32, K: i32, loadC: bool, hasBias: bool, bias: usize): void {
  const K4 = K & ~3;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = b + <usize>n * ldbB, r1 = r0 + ldbB, r2 = r1 + ldbB, r3 = r2 + ldbB;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let k = 0; k < K4; k += 4) {
      const o = <usize>k << 2;
      const xv = v128.load(x + o);
      a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(r0 + o)));
      a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(r1 + o)));
      a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(r2 + o)));
      a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(r3 + o)));
    }
    // lane r of the result = horizontal sum of a_r
    const t0 = f32x4.add(f32x4.shuffle(a0, a1, 0, 4, 1, 5), f32x4.shuffle(a0, a1, 2, 6, 3, 7));
    const t1 = f32x4.add(f32x4.shuffle(a2, a3, 0, 4, 1, 5), f32x4.shuffle(a2, a3, 2, 6, 3, 7));
    let r = f32x4.add(f32x4.shuffle(t0, t1, 0, 1, 4, 5), f32x4.shuffle(t0, t1, 2, 3, 6, 7));
    const yn = y + (<usize>n << 2);
    if (loadC) r = f32x4.add(r, v128.load(yn));
    if (hasBias) r = f32x4.add(r, v128.load(bias + (<usize>n << 2)));
    v128.store(yn, r);
    for (let k = K4; k < K; k++) {
      const o = <usize>k << 2;
      const xk = load<f32>(x + o);
      store<f32>(yn, load<f32>(yn) + xk * load<f32>(r0 + o));
      store<f32>(yn, load<f32>(yn, 4) + xk * load<f32>(r1 + o), 4);
      store<f32>(yn, load<f32>(yn, 8) + xk * load<f32>(r2 + o), 8);
      store<f32>(yn, load<f32>(yn, 12) + xk * load<f32>(r3 + o), 12);
    }
  }
  for (; n < N; n++) {
    const rn = b + <usize>n * ldbB;
    const yn = y + (<usize>n << 2);
    let acc: f32 = loadC ? load<f32>(yn) : 0;
    if (hasBias) acc += load<f32>(bias + (<usize>n << 2));
    for (let k = 0; k < K; k++) acc += load<f32>(x + (<usize>k << 2)) * load<f32>(rn + (<usize>k << 2));
    store<f32>(yn, acc);
  }
}

// K = 0: the product is empty, C = (accumulate ? C : 0) + bias.
function initC(c: usize, ldc: i32, bias: usize, M: i32, N: i32, accumulate: bool, hasBias: bool): void {
  const ldcB = <usize>ldc << 2;
  for (let m = 0; m < M; m++) {
    const row = c + <usize>m * ldcB;
    for (let n = 0; n < N; n++) {
      const p = row + (<usize>n << 2);
      let v: f32 = accumulate ? load<f32>(p) : 0;
      if (hasBias) v += load<f32>(bias + (<usize>n << 2));
      store<f32>(p, v);
    }
  }
}
