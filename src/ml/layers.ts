// GPT-2 layers as forward/backward pairs over flat typed arrays, llm.c-style.
//
// Conventions:
// - Row-major. Shapes are in the comment above each function; B batch, T time, C channels,
//   NH heads, hs = C/NH head size, V vocab, N = B*T rows, OC output channels.
// - Linear weights use Hugging Face GPT-2's Conv1D layout W[in, out] (y = x·W + b), so the
//   checkpoint tensors are written as they are stored, with no transpose.
// - Every backward ACCUMULATES (+=) into the gradients of its inputs and parameters; the caller
//   zeroes gradient buffers once per step. This is what makes the residual stream's gradient
//   (two consumers) and the tied embedding (two uses) come out right without special cases.
// - Functions accept Float32Array (training) or Float64Array (gradient checks in tests).
//
// These are the plain TypeScript versions; WASM SIMD kernels replace the hot ones and are tested
// against these.

import { LAYERNORM_EPS } from './constants';

export type Floats = Float32Array | Float64Array;

const GELU_SCALE = Math.sqrt(2 / Math.PI);

/** out[N,C] = wte[ids[n]] + wpe[n % T]; ids[N] with N = B*T. */
export function encoderForward(out: Floats, ids: ArrayLike<number>, wte: Floats, wpe: Floats, B: number, T: number, C: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      const ix = ids[b * T + t]! * C;
      const px = t * C;
      for (let c = 0; c < C; c++) out[o + c] = wte[ix + c]! + wpe[px + c]!;
    }
  }
}

/** dwte[V,C] += scatter(dout[N,C] by ids); dwpe[T,C] += sum over batch. */
export function encoderBackward(dwte: Floats, dwpe: Floats, dout: Floats, ids: ArrayLike<number>, B: number, T: number, C: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      const ix = ids[b * T + t]! * C;
      const px = t * C;
      for (let c = 0; c < C; c++) {
        const d = dout[o + c]!;
        dwte[ix + c] += d;
        dwpe[px + c] += d;
      }
    }
  }
}

/** out[N,C] = (inp - mean) * rstd * weight[C] + bias[C]; saves mean[N], rstd[N] for backward. */
export function layernormForward(out: Floats, mean: Floats, rstd: Floats, inp: Floats, weight: Floats, bias: Floats, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const x = n * C;
    let sum = 0;
    for (let c = 0; c < C; c++) sum += inp[x + c]!;
    const m = sum / C;
    let sq = 0;
    for (let c = 0; c < C; c++) {
      const d = inp[x + c]! - m;
      sq += d * d;
    }
    const s = 1 / Math.sqrt(sq / C + LAYERNORM_EPS);
    for (let c = 0; c < C; c++) out[x + c] = (inp[x + c]! - m) * s * weight[c]! + bias[c]!;
    mean[n] = m;
    rstd[n] = s;
  }
}

/** Backward of layernormForward. dinp[N,C], dweight[C], dbias[C] accumulate. */
export function layernormBackward(
  dinp: Floats, dweight: Floats, dbias: Floats,
  dout: Floats, inp: Floats, weight: Floats, mean: Floats, rstd: Floats, N: number, C: number,
): void {
  for (let n = 0; n < N; n++) {
    const x = n * C;
    const m = mean[n]!;
    const s = rstd[n]!;
    // Two reductions: mean of dnorm and mean of dnorm * norm (the projections removed by LN).
    let dnormMean = 0;
    let dnormNormMean = 0;
    for (let c = 0; c < C; c++) {
      const norm = (inp[x + c]! - m) * s;
      const dnorm = weight[c]! * dout[x + c]!;
      dnormMean += dnorm;
      dnormNormMean += dnorm * norm;
    }
    dnormMean /= C;
    dnormNormMean /= C;
    for (let c = 0; c < C; c++) {
      const norm = (inp[x + c]! - m) * s;
      const d = dout[x + c]!;
      dbias[c] += d;
      dweight[c] += norm * d;
      const dnorm = weight[c]! * d;
      dinp[x + c] += (dnorm - dnormMean - norm * dnormNormMean) * s;
    }
  }
}

/**
 * out[N,OC] = inp[N,C] · weight[C,OC] + bias[OC]   (Conv1D layout; bias may be null).
 * Four rows at a time so each weight value loaded is used four times.
 */
export function matmulForward(out: Floats, inp: Floats, weight: Floats, bias: Floats | null, N: number, C: number, OC: number): void {
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const o0 = n * OC, o1 = o0 + OC, o2 = o1 + OC, o3 = o2 + OC;
    for (let j = 0; j < OC; j++) {
      const b = bias === null ? 0 : bias[j]!;
      out[o0 + j] = b; out[o1 + j] = b; out[o2 + j] = b; out[o3 + j] = b;
    }
    const i0 = n * C, i1 = i0 + C, i2 = i1 + C, i3 = i2 + C;
    for (let c = 0; c < C; c++) {
      const a0 = inp[i0 + c]!, a1 = inp[i1 + c]!, a2 = inp[i2 + c]!, a3 = inp[i3 + c]!;
      const w = c * OC;
      for (let j = 0; j < OC; j++) {
        const wv = weight[w + j]!;
        out[o0 + j] += a0 * wv;
        out[o1 + j] += a1 * wv;
        out[o2 + j] += a2 * wv;
        out[o3 + j] += a3 * wv;
      }
    }
  }
  for (; n < N; n++) {
    const o = n * OC;
    for (let j = 0; j < OC; j++) out[o + j] = bias === null ? 0 : bias[j]!;
    for (let c = 0; c < C; c++) {
      const a = inp[n * C + c]!;
      const w = c * OC;
      for (let j = 0; j < OC; j++) out[o + j] += a * weight[w + j]!;
    }
  }
}

/**
 * Backward of matmulForward. All accumulate.
 * dinp[N,C] += dout[N,OC] · weight[C,OC]ᵀ;  dweight[C,OC] += inp[N,C]ᵀ · dout[N,OC];  dbias[OC] += Σn dout.
 */
export function matmulBackward(
  dinp: Floats, dweight: Floats, dbias: Floats | null,
  dout: Floats, inp: Floats, weight: Floats, N: number, C: number, OC: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * OC;
    const i = n * C;
    for (let c = 0; c < C; c++) {
      const w = c * OC;
      let s = 0;
      for (let j = 0; j < OC; j++) s += dout[o + j]! * weight[w + j]!;
      dinp[i + c] += s;
    }
  }
  for (let n = 0; n < N; n++) {
    const o = n * OC;
    const i = n * C;
    for (let c = 0; c < C; c++) {
      const a = inp[i + c]!;
      if (a === 0) continue;
      const w = c * OC;
      for (let j = 0; j < OC; j++) dweight[w + j] += a * dout[o + j]!;
    }
  }
  if (dbias !== null) {
    for (let n = 0; n < N; n++) {
      const o = n * OC;
      for (let j = 0; j < OC; j++) dbias[j] += dout[o + j]!;
    }
  }
}

/** The tied output head. logits[N,V] = inp[N,C] · wte[V,C]ᵀ. */
export function headForward(logits: Floats, inp: Floats, wte: Floats, N: number, C: number, V: number): void {
  for (let n = 0; n < N; n++) {
    const i = n * C;
    const o = n * V;
    for (let v = 0; v < V; v++) {
      const w = v * C;
      let s = 0;
      for (let c = 0; c < C; c++) s += inp[i + c]! * wte[w + c]!;
      logits[o + v] = s;
    }
  }
}

/** Backward of headForward. dinp[N,C] += dlogits · wte;  dwte[V,C] += dlogitsᵀ · inp. */
export function headBackward(dinp: Floats, dwte: Floats, dlogits: Floats, inp: Floats, wte: Floats, N: number, C: number, V: number): void {
  for (let n = 0; n < N; n++) {
    const i = n * C;
    const o = n * V;
    for (let v = 0; v < V; v++) {
      const d = dlogits[o + v]!;
      if (d === 0) continue;
      const w = v * C;
      for (let c = 0; c < C; c++) {
        dinp[i + c] += d * wte[w + c]!;
        dwte[w + c] += d * inp[i + c]!;
      }
    }
  }
}

/**
 * Causal multi-head self-attention.
 * qkv[B,T,3C] (q | k | v, each [C] split into NH heads of hs) -> out[B,T,C];
 * att[B,NH,T,T] keeps the softmax probabilities (row t uses columns 0..t) for backward.
 */
export function attentionForward(out: Floats, att: Floats, qkv: Floats, B: number, T: number, C: number, NH: number): void {
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const C3 = 3 * C;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const q = (b * T + t) * C3 + h * hs;
        const a = ((b * NH + h) * T + t) * T;
        let max = -Infinity;
        for (let t2 = 0; t2 <= t; t2++) {
          const k = (b * T + t2) * C3 + C + h * hs;
          let s = 0;
          for (let i = 0; i < hs; i++) s += qkv[q + i]! * qkv[k + i]!;
          s *= scale;
          att[a + t2] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const e = Math.exp(att[a + t2]! - max);
          att[a + t2] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let t2 = 0; t2 <= t; t2++) att[a + t2] *= inv;
        for (let t2 = t + 1; t2 < T; t2++) att[a + t2] = 0;
        const o = (b * T + t) * C + h * hs;
        for (let i = 0; i < hs; i++) out[o + i] = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const v = (b * T + t2) * C3 + 2 * C + h * hs;
          const p = att[a + t2]!;
          for (let i = 0; i < hs; i++) out[o + i] += p * qkv[v + i]!;
        }
      }
    }
  }
}

/**
 * Backward of attentionForward. dqkv[B,T,3C] accumulates. scratch: at least T floats
 * (the gradient of one row of attention probabilities), so no [B,NH,T,T] gradient buffer is needed.
 */
export function attentionBackward(dqkv: Floats, scratch: Floats, dout: Floats, qkv: Floats, att: Floats, B: number, T: number, C: number, NH: number): void {
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const C3 = 3 * C;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const a = ((b * NH + h) * T + t) * T;
        const o = (b * T + t) * C + h * hs;
        // datt[t2] = dout · v[t2];  dv[t2] += att[t2] * dout
        let dot = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const v = (b * T + t2) * C3 + 2 * C + h * hs;
          const p = att[a + t2]!;
          let s = 0;
          for (let i = 0; i < hs; i++) {
            const d = dout[o + i]!;
            s += d * qkv[v + i]!;
            dqkv[v + i] += p * d;
          }
          scratch[t2] = s;
          dot += p * s;
        }
        // softmax backward: dpre[t2] = att[t2] * (datt[t2] - Σ att·datt), then through q·k * scale.
        const q = (b * T + t) * C3 + h * hs;
        for (let t2 = 0; t2 <= t; t2++) {
          const dpre = att[a + t2]! * (scratch[t2]! - dot) * scale;
          if (dpre === 0) continue;
          const k = (b * T + t2) * C3 + C + h * hs;
          for (let i = 0; i < hs; i++) {
            dqkv[q + i] += dpre * qkv[k + i]!;
            dqkv[k + i] += dpre * qkv[q + i]!;
          }
        }
      }
    }
  }
}

/** out[n] = GELU(inp[n]) with GPT-2's tanh approximation ("gelu_new"). */
export function geluForward(out: Floats, inp: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = inp[i]!;
    out[i] = 0.5 * x * (1 + Math.tanh(GELU_SCALE * (x + 0.044715 * x * x * x)));
  }
}

/** dinp[n] += GELU'(inp[n]) * dout[n]. */
export function geluBackward(dinp: Floats, inp: Floats, dout: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = inp[i]!;
    const u = GELU_SCALE * (x + 0.044715 * x * x * x);
    const th = Math.tanh(u);
    const sech2 = 1 - th * th;
    const grad = 0.5 * (1 + th) + 0.5 * x * sech2 * GELU_SCALE * (1 + 3 * 0.044715 * x * x);
    dinp[i] += grad * dout[i]!;
  }
}

/** out[n] = a[n] + b[n]. */
export function residualForward(out: Floats, a: Floats, b: Floats, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
}

/**
 * The mixture loss of a batch (ml/countsOdds.ts): per position, plainShare·CE + (1 − plainShare)·
 * (−ln(p_gpt(y) + odds)) — the served mixture's loss, blended with the GPT's own cross-entropy.
 */
export interface MixtureLoss {
  /** [B*T] the counts' odds of each target (0: no counts there). */
  odds: ArrayLike<number>;
  /** β ∈ [0, 1]: the plain cross-entropy's share. */
  plainShare: number;
}

/**
 * The factor on one position's cross-entropy gradient under the mixture loss: β + (1 − β)·r, where
 * r = 1 / (1 + odds·e^{CE}) is the posterior that the GPT, not the counts, produced the target
 * (CE = −ln p_gpt(y); odds = the counts' share of the served probability over the GPT's share).
 * odds 0 (no counts, e.g. FIM's sentinels) gives 1: plain cross-entropy.
 */
export function mixtureGradientWeight(crossEntropy: number, odds: number, plainShare = 0): number {
  if (!(odds > 0)) return 1;
  // e^{CE} overflows past CE ≈ 709, where r is 0 to double precision anyway.
  return plainShare + (1 - plainShare) / (1 + odds * Math.exp(Math.min(crossEntropy, 700)));
}

/** x[N,V]: row n ·= scales[n] (the mixture loss's gradient weight per position, ml/countsOdds.ts). */
export function scaleRows(x: Floats, scales: ArrayLike<number>, N: number, V: number): void {
  for (let n = 0; n < N; n++) {
    const s = scales[n]!;
    for (let v = 0; v < V; v++) x[n * V + v] *= s;
  }
}

/**
 * Fused softmax + cross-entropy + its gradient, in place.
 * logits[N,V] in; targets[N] (a negative target means "no loss at this row");
 * losses[N] out (per row, 0 for ignored rows).
 * If `gradScale` is given, logits is overwritten with dlogits = (softmax - onehot) * gradScale
 * (rows without a target get 0): no separate [N,V] probabilities buffer is ever allocated.
 * Returns the sum of the losses (float64 accumulated).
 */
export function crossEntropyForwardBackward(logits: Floats, losses: Floats, targets: ArrayLike<number>, N: number, V: number, gradScale: number | null): number {
  let total = 0;
  for (let n = 0; n < N; n++) {
    const o = n * V;
    const target = targets[n]!;
    if (target < 0) {
      losses[n] = 0;
      if (gradScale !== null) for (let v = 0; v < V; v++) logits[o + v] = 0;
      continue;
    }
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v]! > max) max = logits[o + v]!;
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v]! - max);
    const logSum = Math.log(sum) + max;
    const loss = logSum - logits[o + target]!;
    losses[n] = loss;
    total += loss;
    if (gradScale !== null) {
      for (let v = 0; v < V; v++) logits[o + v] = Math.exp(logits[o + v]! - logSum) * gradScale;
      logits[o + target] -= gradScale;
    }
  }
  return total;
}
