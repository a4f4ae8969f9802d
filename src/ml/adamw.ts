// AdamW (decoupled weight decay, bias-corrected moments; torch.optim.AdamW semantics), global-norm
// gradient clipping and the learning-rate schedule (linear warmup, cosine decay to a floor).

import type { Floats, } from './layers';
import type { ParamTensor } from './gpt';

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

  constructor(numParams: number) {
    this.m = new Float32Array(numParams);
    this.v = new Float32Array(numParams);
  }

  /**
   * One update of params[P] from grads[P]. Weight decay only on tensors with layout.decay.
   * p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;
   * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
   */
  update(params: Floats, grads: Floats, layout: ParamTensor[], h: AdamWHyper): void {
    this.step++;
    const t = this.step;
    const bc1 = 1 - Math.pow(h.beta1, t);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(h.beta2, t));
    const stepSize = h.lr / bc1;
    const { m, v } = this;
    const b1 = h.beta1;
    const b2 = h.beta2;
    for (const tensor of layout) {
      const decay = tensor.decay ? 1 - h.lr * h.weightDecay : 1;
      const end = tensor.offset + tensor.size;
      for (let i = tensor.offset; i < end; i++) {
        const g = grads[i]!;
        const mi = b1 * m[i]! + (1 - b1) * g;
        const vi = b2 * v[i]! + (1 - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] = params[i]! * decay - stepSize * mi / (Math.sqrt(vi) / bc2Sqrt + h.eps);
      }
    }
  }
}

/** L2 norm of the whole gradient (float64 accumulation). */
export function gradNorm(grads: Floats): number {
  let s = 0;
  for (let i = 0; i < grads.length; i++) {
    const g = grads[i]!;
    s += g * g;
  }
  return Math.sqrt(s);
}

/**
 * Scales grads so their global norm is at most maxNorm (torch.nn.utils.clip_grad_norm_:
 * coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the norm before clipping.
 */
export function clipGradNorm(grads: Floats, maxNorm: number): number {
  const norm = gradNorm(grads);
  const coef = maxNorm / (norm + 1e-6);
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
