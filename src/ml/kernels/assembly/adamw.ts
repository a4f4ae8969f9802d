// The optimizer's kernels in WebAssembly SIMD128 (twins: adamw.adamwUpdateRange,
// adamw.sumSquares): the AdamW update and Σx² for the global gradient norm. Part of
// kernels.wasm (entry: ./index.ts).

import { highHalf, hsum64 } from './math';

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
