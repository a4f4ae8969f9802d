// The model's compute backend. `tsOps` is the plain TypeScript implementation (layers.ts: the
// slow, obviously correct twins, also used in float64 for gradient checks); `wasmOps` runs the hot
// ones as WebAssembly SIMD kernels on tensors that live in the kernels' shared memory. Gpt calls
// only through an Ops, so both backends run the same model code.

import * as layers from './layers';
import type { Floats } from './layers';
import { Kernels, MatmulFlags } from './kernels/wasmKernels';

export interface Ops {
  readonly name: string;
  encoderForward: typeof layers.encoderForward;
  encoderBackward: typeof layers.encoderBackward;
  layernormForward: typeof layers.layernormForward;
  layernormBackward: typeof layers.layernormBackward;
  matmulForward: typeof layers.matmulForward;
  matmulBackward: typeof layers.matmulBackward;
  headForward: typeof layers.headForward;
  headBackward: typeof layers.headBackward;
  attentionForward: typeof layers.attentionForward;
  /** scratch: at least T*T floats. */
  attentionBackward: typeof layers.attentionBackward;
  geluForward: typeof layers.geluForward;
  geluBackward: typeof layers.geluBackward;
  residualForward: typeof layers.residualForward;
  crossEntropyForwardBackward: typeof layers.crossEntropyForwardBackward;
}

export const tsOps: Ops = {
  name: 'typescript',
  encoderForward: layers.encoderForward,
  encoderBackward: layers.encoderBackward,
  layernormForward: layers.layernormForward,
  layernormBackward: layers.layernormBackward,
  matmulForward: layers.matmulForward,
  matmulBackward: layers.matmulBackward,
  headForward: layers.headForward,
  headBackward: layers.headBackward,
  attentionForward: layers.attentionForward,
  attentionBackward: layers.attentionBackward,
  geluForward: layers.geluForward,
  geluBackward: layers.geluBackward,
  residualForward: layers.residualForward,
  crossEntropyForwardBackward: layers.crossEntropyForwardBackward,
};

/** Byte offset of a view in the kernels' memory (all tensors of a wasm-backed model live there). */
function ptr(v: Floats): number {
  if (!(v instanceof Float32Array) || !(v.buffer instanceof SharedArrayBuffer)) {
    throw new Error('wasm ops: tensor is not a float32 view of the kernels\' shared memory');
  }
  return v.byteOffset;
}

/**
 * Ops whose matrix products run in WASM SIMD. Attention is computed per (batch, head) as two
 * strided products (q·kᵀ over the whole [T,T] block, then att·v) around a causal row softmax;
 * the upper triangle costs 2x in the score product but keeps the packed kernel's ~90% of peak.
 */
export function wasmOps(k: Kernels): Ops {
  const { TRANS_A, TRANS_B, ACCUMULATE, BIAS } = MatmulFlags;
  return {
    ...tsOps,
    name: 'wasm-simd',
    // out[N,OC] = inp[N,C]·W[C,OC] + b
    matmulForward(out, inp, weight, bias, N, C, OC) {
      k.matmul(ptr(out), ptr(inp), ptr(weight), bias === null ? 0 : ptr(bias), N, OC, C, bias === null ? 0 : BIAS);
    },
    // dinp[N,C] += dout[N,OC]·W[C,OC]ᵀ;  dW[C,OC] += inp[N,C]ᵀ·dout[N,OC];  db[OC] += Σ rows dout
    matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC) {
      k.matmul(ptr(dinp), ptr(dout), ptr(weight), 0, N, C, OC, TRANS_B | ACCUMULATE);
      k.matmul(ptr(dweight), ptr(inp), ptr(dout), 0, C, OC, N, TRANS_A | ACCUMULATE);
      if (dbias !== null) k.colsumInto(ptr(dbias), ptr(dout), N, OC);
    },
    // logits[N,V] = inp[N,C]·wte[V,C]ᵀ
    headForward(logits, inp, wte, N, C, V) {
      k.matmul(ptr(logits), ptr(inp), ptr(wte), 0, N, V, C, TRANS_B);
    },
    // dinp[N,C] += dlogits[N,V]·wte[V,C];  dwte[V,C] += dlogits[N,V]ᵀ·inp[N,C]
    headBackward(dinp, dwte, dlogits, inp, wte, N, C, V) {
      k.matmul(ptr(dinp), ptr(dlogits), ptr(wte), 0, N, C, V, ACCUMULATE);
      k.matmul(ptr(dwte), ptr(dlogits), ptr(inp), 0, V, C, N, TRANS_A | ACCUMULATE);
    },
    // qkv[B,T,3C] -> out[B,T,C]; att[B,NH,T,T] keeps the probabilities.
    attentionForward(out, att, qkv, B, T, C, NH) {
      const hs = C / NH;
      const scale = 1 / Math.sqrt(hs);
      const C3 = 3 * C;
      const qkvP = ptr(qkv), attP = ptr(att), outP = ptr(out);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < NH; h++) {
          const q = qkvP + 4 * (b * T * C3 + h * hs);
          const kk = q + 4 * C;
          const v = q + 8 * C;
          const aOff = (b * NH + h) * T * T;
          const a = attP + 4 * aOff;
          // scores[T,T] = Q[T,hs]·K[T,hs]ᵀ (rows of stride 3C inside qkv)
          k.matmulLd(a, T, q, C3, kk, C3, 0, T, T, hs, TRANS_B);
          causalSoftmaxRows(att, aOff, T, scale);
          // out_h[T,hs] = att[T,T]·V[T,hs]
          k.matmulLd(outP + 4 * (b * T * C + h * hs), C, a, T, v, C3, 0, T, hs, T, 0);
        }
      }
    },
    attentionBackward(dqkv, scratch, dout, qkv, att, B, T, C, NH) {
      const hs = C / NH;
      const scale = 1 / Math.sqrt(hs);
      const C3 = 3 * C;
      const qkvP = ptr(qkv), dqkvP = ptr(dqkv), attP = ptr(att), doutP = ptr(dout), sP = ptr(scratch);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < NH; h++) {
          const off = 4 * (b * T * C3 + h * hs);
          const q = qkvP + off, kk = q + 4 * C, v = q + 8 * C;
          const dq = dqkvP + off, dk = dq + 4 * C, dv = dq + 8 * C;
          const aOff = (b * NH + h) * T * T;
          const a = attP + 4 * aOff;
          const d = doutP + 4 * (b * T * C + h * hs);
          // datt[T,T] = dout_h[T,hs]·V[T,hs]ᵀ  (into scratch)
          k.matmulLd(sP, T, d, C, v, C3, 0, T, T, hs, TRANS_B);
          // dV[T,hs] += att[T,T]ᵀ·dout_h[T,hs]
          k.matmulLd(dv, C3, a, T, d, C, 0, T, hs, T, TRANS_A | ACCUMULATE);
          // scratch := dpre = scale · att ⊙ (datt − rowsum(att ⊙ datt)), causal
          causalSoftmaxBackwardRows(scratch, att, aOff, T, scale);
          // dQ[T,hs] += dpre[T,T]·K[T,hs];  dK[T,hs] += dpre[T,T]ᵀ·Q[T,hs]
          k.matmulLd(dq, C3, sP, T, kk, C3, 0, T, hs, T, ACCUMULATE);
          k.matmulLd(dk, C3, sP, T, q, C3, 0, T, hs, T, TRANS_A | ACCUMULATE);
        }
      }
    },
  };
}

/** In place on att[off .. off+T*T): row t = softmax(scale · row[0..t]), zeros after t. */
export function causalSoftmaxRows(att: Floats, off: number, T: number, scale: number): void {
  for (let t = 0; t < T; t++) {
    const r = off + t * T;
    let max = -Infinity;
    for (let j = 0; j <= t; j++) {
      const s = att[r + j]! * scale;
      att[r + j] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let j = 0; j <= t; j++) {
      const e = Math.exp(att[r + j]! - max);
      att[r + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = 0; j <= t; j++) att[r + j] *= inv;
    for (let j = t + 1; j < T; j++) att[r + j] = 0;
  }
}

/** datt[T,T] (in `d`, from offset 0) becomes dpre in place: scale · att ⊙ (datt − Σ att⊙datt), causal. */
export function causalSoftmaxBackwardRows(d: Floats, att: Floats, attOff: number, T: number, scale: number): void {
  for (let t = 0; t < T; t++) {
    const r = t * T;
    const ar = attOff + t * T;
    let dot = 0;
    for (let j = 0; j <= t; j++) dot += att[ar + j]! * d[r + j]!;
    for (let j = 0; j <= t; j++) d[r + j] = scale * att[ar + j]! * (d[r + j]! - dot);
    for (let j = t + 1; j < T; j++) d[r + j] = 0;
  }
}
