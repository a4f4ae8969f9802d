// Workspace LM — fast float32 kernels in WebAssembly SIMD128 (AssemblyScript).
//
// Compiled by esbuild.mjs to dist/kernels.wasm (flags there: --runtime stub --importMemory
// --sharedMemory --maximumMemory 65536 --enable simd,threads --noAssert -O3). Loaded by
// ../wasmKernels.ts. The module owns NO linear memory: it imports env.memory (shared, so
// several worker_threads can run kernels on the same tensors), has no data segments, no
// allocator and no GC. Every pointer below is a byte offset into that memory chosen by the
// caller; every size is in elements. All matrices are row-major float32.
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
//
// The second half of the file holds the rest of a training step's math, each kernel the SIMD
// twin of a plain-TS function in ../../layers.ts or ../../adamw.ts: fused softmax +
// cross-entropy, layernorm, GELU, causal attention (around matmul_ld), AdamW, Σx²; plus the
// 4-lane exp/tanh they are built on.

// ---------------------------------------------------------------------------------------
// flags for matmul / matmul_ld (mirrored in ../wasmKernels.ts)
const TRANS_A: i32 = 1;
const TRANS_B: i32 = 2;
const ACCUMULATE: i32 = 4;
const BIAS: i32 = 8;

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

// ---------------------------------------------------------------------------------------
// Elementwise helpers (n floats each; out may alias an input exactly, not partially).

/** out[i] = a[i] + b[i]  (residual adds) */
export function add(out: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/** out[i] = s · x[i]  (in place when out == x) */
export function scale(out: usize, x: usize, s: f32, n: i32): void {
  const sv = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(v128.load(x + o), sv));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(x + o) * s);
  }
}

/** y[i] += alpha · x[i]  (e.g. SGD-style updates) */
export function axpy(y: usize, alpha: f32, x: usize, n: i32): void {
  const av = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(av, v128.load(x + o))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + alpha * load<f32>(x + o));
  }
}

/** dst[i] += src[i]  (summing per-worker gradient buffers in one pass) */
export function sum_into(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

/** dst[N] += Σ_m src[m, 0:N], src row-major [M,N]  (bias gradient db = Σ_rows dy) */
export function colsum_into(dst: usize, src: usize, M: i32, N: i32): void {
  const rowB = <usize>N << 2;
  for (let m = 0; m < M; m++) {
    sum_into(dst, src + <usize>m * rowB, N);
  }
}

// =======================================================================================
// Row-wise and elementwise kernels of a training step: fused softmax + cross-entropy,
// layernorm, GELU, causal attention, AdamW. Each one matches a plain-TS twin in
// ../../layers.ts or ../../adamw.ts (same arguments, same overwrite/accumulate rules: every
// backward ACCUMULATES into its outputs). The twins compute in float64 and round once; these
// compute in float32 SIMD, with float64 where a long reduction or a cancellation needs it.

// ---------------------------------------------------------------------------------------
// exp(x) on 4 lanes. Range reduction x = k·ln2 + r, k = round(x/ln2), |r| ≤ ln2/2, then
// exp(x) = 2^k · p(r) with p a degree-6 polynomial. No table, no float→int conversion:
//   k:    t = x·log2(e) + 1.5·2^23 rounds to an integer held in t's low mantissa bits, so
//         bits(t) = 0x4B400000 + k and kf = t − 1.5·2^23 is k as a float;
//   r:    x − kf·ln2 in two steps (Cody–Waite): kf·LN2_HI is exact (LN2_HI has 9 bits);
//   2^k:  (bits(t) + 126) << 23 is the float 2^(k−1) (the shift drops 0x4B4 and the 1.5's
//         bit); the polynomial returns 2·exp(r) to compensate. Using 2^(k−1) lets k reach
//         128 without overflowing the exponent field.
// Inputs are clamped to [EXP_LO, EXP_HI]: above, the result saturates at exp(88.7) ≈ 3.3e38
// (never Inf); from about −87 down (k ≤ −126) the scale's exponent field is 0 and the result
// is exactly 0 — no denormals, never NaN for non-NaN input. NaN propagates.
// Accuracy (test/kernels-rowwise.test.ts, 250K points): max relative error 1.2e-7 (1.0 ulp
// of 1) on [−86.9, 88.7]; exp(0) = 1 exactly. ~0.6 ns per value on one Zen 5 core.
const EXP_HI: f32 = 88.7;
const EXP_LO: f32 = -87.33654475; // ln(2^-126)
const LOG2E: f32 = 1.4426950408889634;
const ROUND_MAGIC: f32 = 12582912.0; // 1.5·2^23
const LN2_HI: f32 = 0.693359375; // 355/512
const LN2_LO: f32 = -2.1219444005469057e-4; // ln2 − LN2_HI
// 2·exp(r) ≈ 2 + 2r + P2 r² + … + P6 r⁶: a relative-error minimax fit on |r| ≤ 1.001·ln2/2
// (fit error 2e-9, far below float32 rounding), coefficients rounded to float32 and doubled.
const P2: f32 = 0.9999998807907104;
const P3: f32 = 0.33332860469818115;
const P4: f32 = 0.08333601802587509;
const P5: f32 = 0.016748473048210144;
const P6: f32 = 0.0027687118854373693;

// @ts-ignore: decorator
@inline
function expv(x: v128): v128 {
  return expvMax(x, EXP_HI);
}

/** expv with inputs clamped to [EXP_LO, hi] (hi ≤ EXP_HI, a constant after inlining). */
// @ts-ignore: decorator
@inline
function expvMax(x: v128, hi: f32): v128 {
  // pmax/pmin (x86 maxps/minps) keep a NaN x: pmax(x, lo) = x < lo ? lo : x.
  const xc = f32x4.pmin(f32x4.pmax(x, f32x4.splat(EXP_LO)), f32x4.splat(hi));
  const t = f32x4.add(f32x4.mul(xc, f32x4.splat(LOG2E)), f32x4.splat(ROUND_MAGIC));
  const kf = f32x4.sub(t, f32x4.splat(ROUND_MAGIC));
  const r = f32x4.sub(f32x4.sub(xc, f32x4.mul(kf, f32x4.splat(LN2_HI))), f32x4.mul(kf, f32x4.splat(LN2_LO)));
  // Estrin: (2 + 2r) + r²·((P2 + P3 r) + r²·((P4 + P5 r) + r²·P6)) — shorter dependency chain
  const r2 = f32x4.mul(r, r);
  const p01 = f32x4.add(f32x4.splat(2), f32x4.add(r, r));
  const p23 = f32x4.add(f32x4.splat(P2), f32x4.mul(r, f32x4.splat(P3)));
  const p45 = f32x4.add(f32x4.splat(P4), f32x4.mul(r, f32x4.splat(P5)));
  const p46 = f32x4.add(p45, f32x4.mul(r2, f32x4.splat(P6)));
  const p26 = f32x4.add(p23, f32x4.mul(r2, p46));
  const p = f32x4.add(p01, f32x4.mul(r2, p26));
  const scale = i32x4.shl(i32x4.add(t, i32x4.splat(126)), 23); // 2^(k−1), or 0 when k = −126
  return f32x4.mul(p, scale);
}

/** Scalar exp with exactly the vector's arithmetic (row tails use it, so results agree). */
// @ts-ignore: decorator
@inline
function exps(x: f32): f32 {
  return f32x4.extract_lane(expv(f32x4.splat(x)), 0);
}

// tanh(u) on 4 lanes. |u| < 0.625: u + u³·Q(u²) (relative-error minimax fit, 4e-9);
// otherwise sign(u)·(1 − e)/(1 + e) with e = exp(−2|u|) ≤ 0.29 (no cancellation there; for
// |u| ≳ 9, e < 1.5e-8 and the result rounds to ±1). Measured max relative error 1.4e-7.
// (GELU does not use this: it needs 1 + tanh and 1 − tanh², which it takes from e directly.)
const TANH_SMALL: f32 = 0.625;
const Q1: f32 = -0.3333328068256378;
const Q2: f32 = 0.13331441581249237;
const Q3: f32 = -0.05373971536755562;
const Q4: f32 = 0.0206390842795372;
const Q5: f32 = -0.005704984534531832;

// @ts-ignore: decorator
@inline
function tanhv(u: v128): v128 {
  const a = f32x4.abs(u);
  const one = f32x4.splat(1);
  const e = expv(f32x4.mul(a, f32x4.splat(-2)));
  const big = f32x4.div(f32x4.sub(one, e), f32x4.add(one, e));
  const bigSigned = v128.or(big, v128.and(u, i32x4.splat(0x80000000))); // copysign(big, u)
  const u2 = f32x4.mul(u, u);
  const u4 = f32x4.mul(u2, u2);
  // Q(u²) = (Q1 + Q2 u²) + u⁴·((Q3 + Q4 u²) + u⁴·Q5)
  const q = f32x4.add(
    f32x4.add(f32x4.splat(Q1), f32x4.mul(u2, f32x4.splat(Q2))),
    f32x4.mul(u4, f32x4.add(f32x4.add(f32x4.splat(Q3), f32x4.mul(u2, f32x4.splat(Q4))), f32x4.mul(u4, f32x4.splat(Q5)))),
  );
  const small = f32x4.add(u, f32x4.mul(f32x4.mul(u, u2), q));
  return v128.bitselect(small, bigSigned, f32x4.lt(a, f32x4.splat(TANH_SMALL)));
}

/** out[i] = exp(x[i]) (the vector exp above; out may alias x). */
export function exp_f32(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const e0 = expv(v128.load(x + o)), e1 = expv(v128.load(x + o, 16));
    const e2 = expv(v128.load(x + o, 32)), e3 = expv(v128.load(x + o, 48));
    v128.store(out + o, e0);
    v128.store(out + o, e1, 16);
    v128.store(out + o, e2, 32);
    v128.store(out + o, e3, 48);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, expv(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, exps(load<f32>(x + o)));
  }
}

/** out[i] = tanh(x[i]) (out may alias x). */
export function tanh_f32(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, tanhv(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(tanhv(f32x4.splat(load<f32>(x + o))), 0));
  }
}

// Horizontal sums.
// @ts-ignore: decorator
@inline
function hsum32(v: v128): f32 {
  const s = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}
// @ts-ignore: decorator
@inline
function hsum64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}
// @ts-ignore: decorator
@inline
function hmax32(v: v128): f32 {
  const m = f32x4.pmax(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  const a = f32x4.extract_lane(m, 0), b = f32x4.extract_lane(m, 1);
  return a < b ? b : a;
}
/** Lanes 2, 3 of a f32x4 moved to lanes 0, 1 (for f64x2.promote_low_f32x4). */
// @ts-ignore: decorator
@inline
function highHalf(v: v128): v128 {
  return f32x4.shuffle(v, v, 2, 3, 2, 3);
}

// ---------------------------------------------------------------------------------------
// Fused softmax + cross-entropy + gradient, in place (twin: layers.crossEntropyForwardBackward).
//   logits[N,V] f32; targets[N] i32 (negative = no loss at this row); losses[N] f32 out.
//   gradScale: NaN = no gradient (logits are left untouched); otherwise logits is overwritten
//   with dlogits = (softmax − onehot(target))·gradScale, and ignored rows with 0.
//   Returns Σ losses (float64, unrounded per-row losses, like the twin).
// Per row (≤ 40 KB for V = 10,000, so it stays in L1/L2 across the passes):
//   1. max over the row;
//   2. e = exp(l − max), Σe in float64 (see below), e stored back into the row when a
//      gradient is wanted — the only exp of the row;
//   3. loss = log Σe + max − l[target]   (float64; l[target] read before pass 2);
//   4. row ·= gradScale/Σe, then row[target] −= gradScale (float64 arithmetic, one rounding).
// exp(l − max) rather than the twin's exp(l − logSumExp): l − max is exact for the values
// that matter (near the max), and the division by Σe is one float32 rounding.
export function cross_entropy_forward_backward(
  logits: usize, losses: usize, targets: usize, N: i32, V: i32, gradScale: f64,
): f64 {
  const wantGrad = gradScale == gradScale; // not NaN
  const V4 = V & ~3;
  const rowB = <usize>V << 2;
  let total: f64 = 0;
  for (let n = 0; n < N; n++) {
    const row = logits + <usize>n * rowB;
    const target = load<i32>(targets + (<usize>n << 2));
    if (target < 0) {
      store<f32>(losses + (<usize>n << 2), 0);
      if (wantGrad) memory.fill(row, 0, rowB);
      continue;
    }
    // 1. max
    let mv = f32x4.splat(-Infinity);
    let v = 0;
    for (; v < V4; v += 4) mv = f32x4.pmax(mv, v128.load(row + (<usize>v << 2)));
    let max = hmax32(mv);
    for (; v < V; v++) {
      const l = load<f32>(row + (<usize>v << 2));
      if (l > max) max = l;
    }
    const lt = load<f32>(row + (<usize>target << 2));
    // 2. exp and sum
    const maxv = f32x4.splat(max);
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
    v = 0;
    // 16 columns per iteration: four exps summed pairwise in float32 (two roundings, ≤ 1.2e-7
    // relative), then one promotion to the float64 sums — 5x fewer conversion ops than
    // promoting every vector.
    if (wantGrad) {
      for (; v + 16 <= V; v += 16) {
        const p = row + (<usize>v << 2);
        const e0 = expv(f32x4.sub(v128.load(p), maxv));
        const e1 = expv(f32x4.sub(v128.load(p, 16), maxv));
        const e2 = expv(f32x4.sub(v128.load(p, 32), maxv));
        const e3 = expv(f32x4.sub(v128.load(p, 48), maxv));
        v128.store(p, e0);
        v128.store(p, e1, 16);
        v128.store(p, e2, 32);
        v128.store(p, e3, 48);
        const e = f32x4.add(f32x4.add(e0, e1), f32x4.add(e2, e3));
        s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
        s1 = f64x2.add(s1, f64x2.promote_low_f32x4(highHalf(e)));
      }
      for (; v < V4; v += 4) {
        const p = row + (<usize>v << 2);
        const e = expv(f32x4.sub(v128.load(p), maxv));
        v128.store(p, e);
        s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
        s1 = f64x2.add(s1, f64x2.promote_low_f32x4(highHalf(e)));
      }
    } else {
      for (; v + 16 <= V; v += 16) {
        const p = row + (<usize>v << 2);
        const e0 = expv(f32x4.sub(v128.load(p), maxv));
        const e1 = expv(f32x4.sub(v128.load(p, 16), maxv));
        const e2 = expv(f32x4.sub(v128.load(p, 32), maxv));
        const e3 = expv(f32x4.sub(v128.load(p, 48), maxv));
        const e = f32x4.add(f32x4.add(e0, e1), f32x4.add(e2, e3));
        s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
        s1 = f64x2.add(s1, f64x2.promote_low_f32x4(highHalf(e)));
      }
      for (; v < V4; v += 4) {
        const e = expv(f32x4.sub(v128.load(row + (<usize>v << 2)), maxv));
        s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
        s1 = f64x2.add(s1, f64x2.promote_low_f32x4(highHalf(e)));
      }
    }
    let sum = hsum64(f64x2.add(s0, s1));
    for (; v < V; v++) {
      const p = row + (<usize>v << 2);
      const e = exps(load<f32>(p) - max);
      if (wantGrad) store<f32>(p, e);
      sum += <f64>e;
    }
    // 3. loss
    const loss = Math.log(sum) + <f64>max - <f64>lt;
    store<f32>(losses + (<usize>n << 2), <f32>loss);
    total += loss;
    // 4. gradient
    if (wantGrad) {
      const factor = gradScale / sum;
      const pt = row + (<usize>target << 2);
      const eTarget = <f64>load<f32>(pt);
      scale(row, row, <f32>factor, V);
      store<f32>(pt, <f32>(eTarget * factor - gradScale));
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// LayerNorm (twins: layers.layernormForward / layernormBackward), eps = 1e-5, rows of C.
const LN_EPS: f64 = 1e-5;

/** Σ row[0:C] in float64 (f32x4 loads promoted to f64x2 pairs). */
// @ts-ignore: decorator
@inline
function rowSum64(row: usize, C: i32): f64 {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let c = 0;
  for (; c + 4 <= C; c += 4) {
    const x = v128.load(row + (<usize>c << 2));
    a0 = f64x2.add(a0, f64x2.promote_low_f32x4(x));
    a1 = f64x2.add(a1, f64x2.promote_low_f32x4(highHalf(x)));
  }
  let s = hsum64(f64x2.add(a0, a1));
  for (; c < C; c++) s += <f64>load<f32>(row + (<usize>c << 2));
  return s;
}

// out[N,C] = (inp − mean)·rstd·weight[C] + bias[C]; mean[N], rstd[N] saved for backward.
// Per row: Σx in float64 → mean m (float64), split m = mHi + mLo (two float32s) so x − m is
// computed as (x − mHi) − mLo, exact-ish in float32 even when |mean| ≫ std; Σ(x − m)² in
// float64; rstd = 1/sqrt(var + eps). The output pass is pure float32 SIMD.
export function layernorm_forward(
  out: usize, mean: usize, rstd: usize, inp: usize, weight: usize, bias: usize, N: i32, C: i32,
): void {
  const rowB = <usize>C << 2;
  for (let n = 0; n < N; n++) {
    const x = inp + <usize>n * rowB;
    const y = out + <usize>n * rowB;
    const m = rowSum64(x, C) / <f64>C;
    const mHi = <f32>m;
    const mLo = <f32>(m - <f64>mHi);
    const mHiv = f32x4.splat(mHi), mLov = f32x4.splat(mLo);
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      const d = f32x4.sub(f32x4.sub(v128.load(x + (<usize>c << 2)), mHiv), mLov);
      const d2 = f32x4.mul(d, d);
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(d2));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(highHalf(d2)));
    }
    let sq = hsum64(f64x2.add(a0, a1));
    for (; c < C; c++) {
      const d = load<f32>(x + (<usize>c << 2)) - mHi - mLo;
      sq += <f64>(d * d);
    }
    const s = 1.0 / Math.sqrt(sq / <f64>C + LN_EPS);
    const sf = <f32>s;
    const sv = f32x4.splat(sf);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const d = f32x4.sub(f32x4.sub(v128.load(x + o), mHiv), mLov);
      v128.store(y + o, f32x4.add(f32x4.mul(f32x4.mul(d, sv), v128.load(weight + o)), v128.load(bias + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const d = load<f32>(x + o) - mHi - mLo;
      store<f32>(y + o, d * sf * load<f32>(weight + o) + load<f32>(bias + o));
    }
    store<f32>(mean + (<usize>n << 2), mHi);
    store<f32>(rstd + (<usize>n << 2), sf);
  }
}

// Backward; dinp[N,C], dweight[C], dbias[C] all accumulate. With norm = (x − mean)·rstd and
// dnorm = weight·dout (mean, rstd as saved, float32 — the twin reads the same values):
//   dinp  += (dnorm − mean_c(dnorm) − norm·mean_c(dnorm·norm))·rstd
//   dweight += norm·dout;  dbias += dout
// Pass 1 reduces the two means (float32 lanes: C terms of O(1), rounding far below the
// tolerance), pass 2 writes all three gradients.
export function layernorm_backward(
  dinp: usize, dweight: usize, dbias: usize,
  dout: usize, inp: usize, weight: usize, mean: usize, rstd: usize, N: i32, C: i32,
): void {
  const rowB = <usize>C << 2;
  const invC: f32 = <f32>(1.0 / <f64>C);
  for (let n = 0; n < N; n++) {
    const x = inp + <usize>n * rowB;
    const dy = dout + <usize>n * rowB;
    const dx = dinp + <usize>n * rowB;
    const m = load<f32>(mean + (<usize>n << 2));
    const s = load<f32>(rstd + (<usize>n << 2));
    const mv = f32x4.splat(m), sv = f32x4.splat(s);
    let a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const norm = f32x4.mul(f32x4.sub(v128.load(x + o), mv), sv);
      const dnorm = f32x4.mul(v128.load(weight + o), v128.load(dy + o));
      a1 = f32x4.add(a1, dnorm);
      a2 = f32x4.add(a2, f32x4.mul(dnorm, norm));
    }
    let dnormMean = hsum32(a1), dnormNormMean = hsum32(a2);
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const norm = (load<f32>(x + o) - m) * s;
      const dnorm = load<f32>(weight + o) * load<f32>(dy + o);
      dnormMean += dnorm;
      dnormNormMean += dnorm * norm;
    }
    dnormMean *= invC;
    dnormNormMean *= invC;
    const dmv = f32x4.splat(dnormMean), dnmv = f32x4.splat(dnormNormMean);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const norm = f32x4.mul(f32x4.sub(v128.load(x + o), mv), sv);
      const d = v128.load(dy + o);
      v128.store(dbias + o, f32x4.add(v128.load(dbias + o), d));
      v128.store(dweight + o, f32x4.add(v128.load(dweight + o), f32x4.mul(norm, d)));
      const dnorm = f32x4.mul(v128.load(weight + o), d);
      const g = f32x4.mul(f32x4.sub(f32x4.sub(dnorm, dmv), f32x4.mul(norm, dnmv)), sv);
      v128.store(dx + o, f32x4.add(v128.load(dx + o), g));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const norm = (load<f32>(x + o) - m) * s;
      const d = load<f32>(dy + o);
      store<f32>(dbias + o, load<f32>(dbias + o) + d);
      store<f32>(dweight + o, load<f32>(dweight + o) + norm * d);
      const dnorm = load<f32>(weight + o) * d;
      store<f32>(dx + o, load<f32>(dx + o) + (dnorm - dnormMean - norm * dnormNormMean) * s);
    }
  }
}

// ---------------------------------------------------------------------------------------
// GELU, GPT-2's tanh approximation (twins: layers.geluForward / geluBackward):
//   gelu(x) = x·(1 + tanh u)/2,  u = sqrt(2/π)·(x + 0.044715·x³)
// Written with (1 + tanh u)/2 = sigmoid(2u) = s = 1/(1 + E), E = exp(−2u), so nothing cancels
// in either tail (e.g. x = −5: s ≈ 4.6e-8, where 1 + tanh(u) in float32 would round to 0 or
// 6e-8) and no abs/select is needed:
//   gelu(x)  = x/(1 + E)
//   gelu'(x) = s + (x/2)·(1 − tanh²u)·du/dx = s + 2x·(E·s)·s·du/dx     (1 − tanh²u = 4s(1 − s), 1 − s = E·s)
// Far negative tail: E is capped at e^80 (−2u > 80 ⇔ x < −9.8), so there s = 1.8e-35 rather
// than → 0: gelu and gelu' stay ≥ ~1e-35 in magnitude (true values: smaller, then 0) — this
// keeps every intermediate out of the denormal range, which costs ~5x on this CPU.
// Positive tail: E flushes to 0, gelu(x) = x, gelu'(x) = 1.
const GELU_S: f64 = 0.7978845608028654; // sqrt(2/π)
const GELU_C: f64 = 0.044715;
const GELU_K1: f32 = <f32>(-2.0 * GELU_S); // −2u = x·(K1 + K3·x²)
const GELU_K3: f32 = <f32>(-2.0 * GELU_S * GELU_C);
const GELU_D1: f32 = <f32>(2.0 * GELU_S); // 2·du/dx = D1 + D3·x²
const GELU_D3: f32 = <f32>(2.0 * 3.0 * GELU_S * GELU_C);
const GELU_EMAX: f32 = 80; // cap of −2u

/** E = exp(−2u(x)) on 4 lanes. */
// @ts-ignore: decorator
@inline
function geluExp(x: v128): v128 {
  const x2 = f32x4.mul(x, x);
  return expvMax(f32x4.mul(x, f32x4.add(f32x4.splat(GELU_K1), f32x4.mul(x2, f32x4.splat(GELU_K3)))), GELU_EMAX);
}

// @ts-ignore: decorator
@inline
function geluv(x: v128): v128 {
  return f32x4.div(x, f32x4.add(f32x4.splat(1), geluExp(x)));
}

// gelu'(x) = s + x·(E·s)·s·(D1 + D3·x²)
// @ts-ignore: decorator
@inline
function geluGradv(x: v128): v128 {
  const e = geluExp(x);
  const s = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), e));
  const dudx2 = f32x4.add(f32x4.splat(GELU_D1), f32x4.mul(f32x4.mul(x, x), f32x4.splat(GELU_D3)));
  return f32x4.add(s, f32x4.mul(f32x4.mul(f32x4.mul(e, s), f32x4.mul(s, x)), dudx2));
}

/** out[i] = gelu(inp[i]), i < n (out may alias inp). */
export function gelu_forward(out: usize, inp: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    const y0 = geluv(v128.load(inp + o)), y1 = geluv(v128.load(inp + o, 16));
    v128.store(out + o, y0);
    v128.store(out + o, y1, 16);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, geluv(v128.load(inp + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(geluv(f32x4.splat(load<f32>(inp + o))), 0));
  }
}

/** dinp[i] += gelu'(inp[i])·dout[i], i < n. */
export function gelu_backward(dinp: usize, inp: usize, dout: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    const g0 = f32x4.mul(geluGradv(v128.load(inp + o)), v128.load(dout + o));
    const g1 = f32x4.mul(geluGradv(v128.load(inp + o, 16)), v128.load(dout + o, 16));
    v128.store(dinp + o, f32x4.add(v128.load(dinp + o), g0));
    v128.store(dinp + o, f32x4.add(v128.load(dinp + o, 16), g1), 16);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const g = f32x4.mul(geluGradv(v128.load(inp + o)), v128.load(dout + o));
    v128.store(dinp + o, f32x4.add(v128.load(dinp + o), g));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = f32x4.extract_lane(geluGradv(f32x4.splat(load<f32>(inp + o))), 0);
    store<f32>(dinp + o, load<f32>(dinp + o) + g * load<f32>(dout + o));
  }
}

// ---------------------------------------------------------------------------------------
// Causal attention. One (batch, head) works on a [T,T] block of scores/probabilities;
// the products around the softmax are matmul_ld calls on the strided head slices of
// qkv[B,T,3C] (q | k | v, head h at columns h·hs of each third, row stride 3C).

/** p[0:n] = 0 (n ≥ 0 floats; p 4-byte aligned). */
function zeroFloats(p: usize, n: i32): void {
  let i = 0;
  const z = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) v128.store(p + (<usize>i << 2), z);
  for (; i < n; i++) store<f32>(p + (<usize>i << 2), 0);
}

// Rows are short (T = 128: 64 columns on average), so the ragged end matters: when
// len % 4 ≠ 0 the last, partial vector is processed with its lanes ≥ len masked (−∞ for the
// max, 0 for the sum) and stored whole — those lanes are columns after t, which must become 0
// anyway. Only when that vector would cross the end of the row (T % 4 ≠ 0) is the tail scalar.

/** Lanes i < rem all-ones, others 0 (rem ∈ 0..4). */
// @ts-ignore: decorator
@inline
function laneMask(rem: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(rem));
}

// One row of causalSoftmaxRows: row[0:len] = softmax(scl·row[0:len]), row[len:T] = 0.
// Only row[0:len] matters: stale values after it (even NaN) are masked out or never loaded.
// @ts-ignore: decorator
@inline
function softmaxRowCausal(row: usize, len: i32, T: i32, scl: f32): void {
  const full = len & ~3;
  const rem = len - full;
  const masked = rem != 0 && full + 4 <= T; // partial vector at `full`, lanes ≥ rem masked
  const mask = laneMask(rem);
  const sv = f32x4.splat(scl);
  // 1. max of scl·row
  let mv = f32x4.splat(-Infinity);
  let j = 0;
  for (; j < full; j += 4) mv = f32x4.pmax(mv, f32x4.mul(v128.load(row + (<usize>j << 2)), sv));
  const pf = row + (<usize>full << 2);
  if (masked) mv = f32x4.pmax(mv, v128.bitselect(f32x4.mul(v128.load(pf), sv), f32x4.splat(-Infinity), mask));
  let max = hmax32(mv);
  if (!masked) {
    for (j = full; j < len; j++) {
      const x = load<f32>(row + (<usize>j << 2)) * scl;
      if (x > max) max = x;
    }
  }
  // 2. e = exp(scl·row − max) stored in place, Σe in float64
  const maxv = f32x4.splat(max);
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  for (j = 0; j < full; j += 4) {
    const p = row + (<usize>j << 2);
    const e = expv(f32x4.sub(f32x4.mul(v128.load(p), sv), maxv));
    v128.store(p, e);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(highHalf(e)));
  }
  let end = len; // first column to zero
  if (masked) {
    const e = v128.and(expv(f32x4.sub(f32x4.mul(v128.load(pf), sv), maxv)), mask);
    v128.store(pf, e);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(highHalf(e)));
    end = full + 4;
  }
  let sum = hsum64(f64x2.add(s0, s1));
  if (!masked) {
    for (j = full; j < len; j++) {
      const p = row + (<usize>j << 2);
      const e = exps(load<f32>(p) * scl - max);
      store<f32>(p, e);
      sum += <f64>e;
    }
  }
  // 3. normalize; zero the rest
  scale(row, row, <f32>(1.0 / sum), end);
  zeroFloats(row + (<usize>end << 2), T - end);
}

/**
 * In place on att[T,T] (raw scores q·kᵀ): row t = softmax over columns 0..t of scale·att[t,·],
 * columns t+1..T−1 set to 0 (and never read).
 */
export function causal_softmax_rows(att: usize, T: i32, scale: f32): void {
  const rowB = <usize>T << 2;
  for (let t = 0; t < T; t++) softmaxRowCausal(att + <usize>t * rowB, t + 1, T, scale);
}

// One row of the softmax backward: d[0:len] = scl·a ⊙ (g − Σ a⊙g) over [0, len), d[len:T] = 0.
// d may be g (each element is read before it is written); g[len:T] is never used (a partial
// last vector is masked like in softmaxRowCausal, so even NaN there is harmless).
// @ts-ignore: decorator
@inline
function softmaxBackRowCausal(d: usize, a: usize, g: usize, len: i32, T: i32, scl: f32): void {
  const full = len & ~3;
  const rem = len - full;
  const masked = rem != 0 && full + 4 <= T;
  const mask = laneMask(rem);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j < full; j += 4) {
    const o = <usize>j << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + o), v128.load(g + o)));
  }
  const ofs = <usize>full << 2;
  if (masked) acc = f32x4.add(acc, v128.and(f32x4.mul(v128.load(a + ofs), v128.load(g + ofs)), mask));
  let dot = hsum32(acc);
  if (!masked) {
    for (j = full; j < len; j++) {
      const o = <usize>j << 2;
      dot += load<f32>(a + o) * load<f32>(g + o);
    }
  }
  const dotv = f32x4.splat(dot), sv = f32x4.splat(scl);
  for (j = 0; j < full; j += 4) {
    const o = <usize>j << 2;
    v128.store(d + o, f32x4.mul(f32x4.mul(sv, v128.load(a + o)), f32x4.sub(v128.load(g + o), dotv)));
  }
  let end = len;
  if (masked) {
    const v = f32x4.mul(f32x4.mul(sv, v128.load(a + ofs)), f32x4.sub(v128.load(g + ofs), dotv));
    v128.store(d + ofs, v128.and(v, mask));
    end = full + 4;
  } else {
    for (j = full; j < len; j++) {
      const o = <usize>j << 2;
      store<f32>(d + o, scl * load<f32>(a + o) * (load<f32>(g + o) - dot));
    }
  }
  zeroFloats(d + (<usize>end << 2), T - end);
}

/**
 * Backward of causal_softmax_rows on [T,T] blocks:
 *   dpre[t,t2] = scale·att[t,t2]·(datt[t,t2] − Σ_{j≤t} att[t,j]·datt[t,j])  for t2 ≤ t, else 0.
 * dpre may alias datt (exactly); datt above the diagonal is never read.
 */
export function causal_softmax_backward_rows(dpre: usize, att: usize, datt: usize, T: i32, scale: f32): void {
  const rowB = <usize>T << 2;
  for (let t = 0; t < T; t++) {
    const o = <usize>t * rowB;
    softmaxBackRowCausal(dpre + o, att + o, datt + o, t + 1, T, scale);
  }
}

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

// ---------------------------------------------------------------------------------------
// Optimizer (twins: adamw.adamwUpdateRange, adamw.sumSquares).

/**
 * AdamW on n contiguous parameters (one tensor, or a slice of one — decay is per tensor):
 *   g = grads·gradScale (the clipping coefficient: the gradient itself is not rewritten);  m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²
 *   p = p·decay − stepSize·m/(sqrt(v)/bc2Sqrt + eps)
 * with decay = 1 − lr·wd (or 1), stepSize = lr/(1 − b1^t), bc2Sqrt = sqrt(1 − b2^t) computed by
 * the caller once per step. Constants are rounded to float32 here; all math is float32.
 * Memory-bound (7 streams of n floats).
 */
export function adamw_update(
  params: usize, grads: usize, m: usize, v: usize, n: i32,
  beta1: f64, beta2: f64, eps: f64, decay: f64, stepSize: f64, bc2Sqrt: f64, gradScale: f64,
): void {
  const gs = <f32>gradScale, b1 = <f32>beta1, b2 = <f32>beta2, c1 = <f32>(1 - beta1), c2 = <f32>(1 - beta2);
  const ep = <f32>eps, dc = <f32>decay, st = <f32>stepSize, bc = <f32>bc2Sqrt;
  const gsv = f32x4.splat(gs), b1v = f32x4.splat(b1), b2v = f32x4.splat(b2), c1v = f32x4.splat(c1), c2v = f32x4.splat(c2);
  const epv = f32x4.splat(ep), dcv = f32x4.splat(dc), stv = f32x4.splat(st), bcv = f32x4.splat(bc);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const g = f32x4.mul(v128.load(grads + o), gsv);
    const mi = f32x4.add(f32x4.mul(b1v, v128.load(m + o)), f32x4.mul(c1v, g));
    const vi = f32x4.add(f32x4.mul(b2v, v128.load(v + o)), f32x4.mul(f32x4.mul(c2v, g), g));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const den = f32x4.add(f32x4.div(f32x4.sqrt(vi), bcv), epv);
    const p = f32x4.sub(f32x4.mul(v128.load(params + o), dcv), f32x4.div(f32x4.mul(stv, mi), den));
    v128.store(params + o, p);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(grads + o) * gs;
    const mi = b1 * load<f32>(m + o) + c1 * g;
    const vi = b2 * load<f32>(v + o) + c2 * g * g;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(params + o, load<f32>(params + o) * dc - st * mi / (Mathf.sqrt(vi) / bc + ep));
  }
}

/** Σ x[i]² over n floats, squares and sums in float64 (for the global gradient norm). */
export function sum_squares(x: usize, n: i32): f64 {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    const u = v128.load(x + o), w = v128.load(x + o, 16);
    const u0 = f64x2.promote_low_f32x4(u), u1 = f64x2.promote_low_f32x4(highHalf(u));
    const w0 = f64x2.promote_low_f32x4(w), w1 = f64x2.promote_low_f32x4(highHalf(w));
    a0 = f64x2.add(a0, f64x2.mul(u0, u0));
    a1 = f64x2.add(a1, f64x2.mul(u1, u1));
    a2 = f64x2.add(a2, f64x2.mul(w0, w0));
    a3 = f64x2.add(a3, f64x2.mul(w1, w1));
  }
  let s = hsum64(f64x2.add(f64x2.add(a0, a1), f64x2.add(a2, a3)));
  for (; i < n; i++) {
    const g = <f64>load<f32>(x + (<usize>i << 2));
    s += g * g;
  }
  return s;
}
