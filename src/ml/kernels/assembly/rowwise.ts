// Row-wise kernels in WebAssembly SIMD128: fused softmax + cross-entropy, layernorm, and the
// causal softmax of attention scores (one [T,T] block at a time). Part of kernels.wasm (entry:
// ./index.ts). Each one matches a plain-TS twin in ../../layers.ts or ../reference.ts (same
// arguments, same overwrite/accumulate rules: every backward ACCUMULATES into its outputs).
// The twins compute in float64 and round once; these compute in float32 SIMD, with float64
// where a long reduction or a cancellation needs it.

import { LAYERNORM_EPS } from '../../constants';
import { expv, exps, highHalf, hmax32, hsum32, hsum64, scaleFloats, zeroFloats } from './math';

// ---------------------------------------------------------------------------------------
// Row scaling (twin: layers.scaleRows): x[N,V] row n ·= scales[n]. The mixture loss weights each
// position's cross-entropy gradient by the GPT's posterior share (ml/countsOdds.ts).
export function scale_rows(x: usize, scales: usize, N: i32, V: i32): void {
  const rowB = <usize>V << 2;
  for (let n = 0; n < N; n++) {
    const row = x + <usize>n * rowB;
    scaleFloats(row, row, load<f32>(scales + (<usize>n << 2)), V);
  }
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
      scaleFloats(row, row, <f32>factor, V);
      store<f32>(pt, <f32>(eTarget * factor - gradScale));
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// LayerNorm (twins: layers.layernormForward / layernormBackward), rows of C; eps: LAYERNORM_EPS.

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
    const s = 1.0 / Math.sqrt(sq / <f64>C + LAYERNORM_EPS);
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
// Causal softmax rows. One (batch, head) of attention works on a [T,T] block of scores; row t
// sees columns 0..t. attention.ts runs these between its matmuls.

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
export function softmaxRowCausal(row: usize, len: i32, T: i32, scl: f32): void {
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
  scaleFloats(row, row, <f32>(1.0 / sum), end);
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
export function softmaxBackRowCausal(d: usize, a: usize, g: usize, len: i32, T: i32, scl: f32): void {
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
