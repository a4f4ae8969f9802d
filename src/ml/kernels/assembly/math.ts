// Vector math and elementwise kernels in WebAssembly SIMD128: 4-lane exp and tanh (and the
// horizontal sums the row-wise kernels reduce with), residual adds and gradient sums, GELU.
// Part of kernels.wasm (entry: ./index.ts). Each kernel matches a plain-TS twin in
// ../reference.ts or ../../layers.ts; the twins compute in float64 and round once, these in
// float32 SIMD, with float64 where a long reduction or a cancellation needs it.

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

/** out[i] = s · x[i]  (in place when out == x; the softmax normalizations) */
export function scaleFloats(out: usize, x: usize, s: f32, n: i32): void {
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

/** p[0:n] = 0 (n ≥ 0 floats; p 4-byte aligned). */
export function zeroFloats(p: usize, n: i32): void {
  let i = 0;
  const z = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) v128.store(p + (<usize>i << 2), z);
  for (; i < n; i++) store<f32>(p + (<usize>i << 2), 0);
}

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
export function expv(x: v128): v128 {
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
export function exps(x: f32): f32 {
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
export function hsum32(v: v128): f32 {
  const s = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}
// @ts-ignore: decorator
@inline
export function hsum64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}
// @ts-ignore: decorator
@inline
export function hmax32(v: v128): f32 {
  const m = f32x4.pmax(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  const a = f32x4.extract_lane(m, 0), b = f32x4.extract_lane(m, 1);
  return a < b ? b : a;
}
/** Lanes 2, 3 of a f32x4 moved to lanes 0, 1 (for f64x2.promote_low_f32x4). */
// @ts-ignore: decorator
@inline
export function highHalf(v: v128): v128 {
  return f32x4.shuffle(v, v, 2, 3, 2, 3);
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
