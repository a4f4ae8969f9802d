// AdamW (decoupled weight decay, bias-corrected moments; torch.optim.AdamW semantics), global-norm
// gradient clipping and the learning-rate schedule (linear warmup, cosine decay to a floor).

import type { Floats, } from './layers';
import type { ParamTensor } from './paramLayout';

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** The optimizer's state: one flat array per moment, same layout as the parameters. */
export class AdamW {
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Number of steps taken (the bias correction's t). */
  step = 0;

  /** `moments` lets the moments live in shared memory (worker threads update slices of them). */
  constructor(numParams: number, moments?: { m: Float32Array; v: Float32Array }) {
    if (moments !== undefined && (moments.m.length !== numParams || moments.v.length !== numParams)) {
      throw new Error(`AdamW: moments must have ${numParams} values`);
    }
    this.m = moments?.m ?? new Float32Array(numParams);
    this.v = moments?.v ?? new Float32Array(numParams);
  }

  /** One update of all params[P] from grads[P] (already clipped). */
  update(params: Floats, grads: Floats, layout: ParamTensor[], h: AdamWHyper): void {
    this.step++;
    adamwUpdateRange(params, grads, this.m, this.v, layout, h, this.step, 0, params.length, 1);
  }
}

/**
 * AdamW on the parameter index range [lo, hi) at step t, with grads multiplied by gradScale (the
 * clipping coefficient, so workers need not rewrite the gradient). Weight decay only on tensors
 * with layout.decay.
 * p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 */
export function adamwUpdateRange(
  params: Floats, grads: Floats, m: Float32Array, v: Float32Array, layout: ParamTensor[], h: AdamWHyper,
  t: number, lo: number, hi: number, gradScale: number,
): void {
  const bc1 = 1 - Math.pow(h.beta1, t);
  const bc2Sqrt = Math.sqrt(1 - Math.pow(h.beta2, t));
  const stepSize = h.lr / bc1;
  const b1 = h.beta1;
  const b2 = h.beta2;
  for (const tensor of layout) {
    const start = Math.max(lo, tensor.offset);
    const end = Math.min(hi, tensor.offset + tensor.size);
    if (start >= end) continue;
    const decay = tensor.decay ? 1 - h.lr * h.weightDecay : 1;
    for (let i = start; i < end; i++) {
      const g = grads[i]! * gradScale;
      const mi = b1 * m[i]! + (1 - b1) * g;
      const vi = b2 * v[i]! + (1 - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = params[i]! * decay - stepSize * mi / (Math.sqrt(vi) / bc2Sqrt + h.eps);
    }
  }
}

/** Σ x² over [lo, hi) (float64 accumulation). */
export function sumSquares(x: Floats, lo = 0, hi = x.length): number {
  let s = 0;
  for (let i = lo; i < hi; i++) {
    const g = x[i]!;
    s += g * g;
  }
  return s;
}

/** L2 norm of the whole gradient. */
export function gradNorm(grads: Floats): number {
  return Math.sqrt(sumSquares(grads));
}

/** torch's clip_grad_norm_ coefficient for a gradient of this norm (1 when no clipping is needed). */
export function clipCoefficient(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * Scales grads so their global norm is at most maxNorm (torch.nn.utils.clip_grad_norm_:
 * coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the norm before clipping.
 */
export function clipGradNorm(grads: Floats, maxNorm: number): number {
  const norm = gradNorm(grads);
  const coef = clipCoefficient(norm, maxNorm);
  if (coef < 1) for (let i = 0; i < grads.length; i++) grads[i] = grads[i]! * coef;
  return norm;
}

export interface LrSchedule {
  maxLr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/**
 * Learning rate at a point of training. `progress` is the fraction of the run done in [0,1]
 * (steps or wall time, whichever is further), `step` the optimizer step (for warmup).
 */
export function learningRate(s: LrSchedule, step: number, progress: number): number {
  if (step < s.warmupSteps) return s.maxLr * (step + 1) / s.warmupSteps;
  const warmFrac = s.totalSteps > 0 ? s.warmupSteps / s.totalSteps : 0;
  const p = Math.min(1, Math.max(0, (progress - warmFrac) / Math.max(1e-9, 1 - warmFrac)));
  return s.minLr + 0.5 * (s.maxLr - s.minLr) * (1 + Math.cos(Math.PI * p));
}
