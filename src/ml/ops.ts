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
  scaleRows: typeof layers.scaleRows;
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
  scaleRows: layers.scaleRows,
};

/** Byte offset of a view in the kernels' memory (all tensors of a wasm-backed model live there). */
function ptr(v: Floats): number {
  if (!(v instanceof Float32Array) || !(v.buffer instanceof SharedArrayBuffer)) {
    throw new Error('wasm ops: tensor is not a float32 view of the kernels\' shared memory');
  }
  return v.byteOffset;
}

/**
 * Every op as a WASM SIMD kernel on tensors in the kernels' shared memory (except the embedding
 * lookup, which is memory-bound and tiny). `i32Scratch` supplies shared memory for targets that
 * arrive as JS arrays (the CE kernel reads them by pointer).
 */
export function wasmOps(k: Kernels, i32Scratch?: (n: number) => Int32Array): Ops {
  const { TRANS_A, TRANS_B, ACCUMULATE, BIAS } = MatmulFlags;
  let targetBuf: Int32Array | null = null;
  const targetsPtr = (targets: ArrayLike<number>, n: number): number => {
    if (targets instanceof Int32Array && targets.buffer instanceof SharedArrayBuffer) return targets.byteOffset;
    if (i32Scratch === undefined) throw new Error('wasm ops: targets must be an Int32Array in the kernels\' memory');
    if (targetBuf === null || targetBuf.length < n) targetBuf = i32Scratch(Math.max(n, 1024));
    for (let i = 0; i < n; i++) targetBuf[i] = targets[i]!;
    return targetBuf.byteOffset;
  };
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
    attentionForward(out, att, qkv, B, T, C, NH) {
      k.attentionForward(ptr(out), ptr(att), ptr(qkv), B, T, C, NH);
    },
    attentionBackward(dqkv, scratch, dout, qkv, att, B, T, C, NH) {
      if (scratch.length < T * T) throw new Error('attentionBackward: scratch needs T*T floats');
      k.attentionBackward(ptr(dqkv), ptr(scratch), ptr(dout), ptr(qkv), ptr(att), B, T, C, NH);
    },
    layernormForward(out, mean, rstd, inp, weight, bias, N, C) {
      k.layernormForward(ptr(out), ptr(mean), ptr(rstd), ptr(inp), ptr(weight), ptr(bias), N, C);
    },
    layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C) {
      k.layernormBackward(ptr(dinp), ptr(dweight), ptr(dbias), ptr(dout), ptr(inp), ptr(weight), ptr(mean), ptr(rstd), N, C);
    },
    geluForward(out, inp, n) {
      k.geluForward(ptr(out), ptr(inp), n);
    },
    geluBackward(dinp, inp, dout, n) {
      k.geluBackward(ptr(dinp), ptr(inp), ptr(dout), n);
    },
    residualForward(out, a, b, n) {
      k.add(ptr(out), ptr(a), ptr(b), n);
    },
    crossEntropyForwardBackward(logits, losses, targets, N, V, gradScale) {
      for (let i = 0; i < N; i++) {
        const t = targets[i]!;
        if (t >= V) throw new Error(`cross-entropy: target ${t} out of range [0, ${V})`);
      }
      // The kernel's "no gradient" is a NaN gradScale.
      return k.crossEntropyForwardBackward(ptr(logits), ptr(losses), targetsPtr(targets, N), N, V, gradScale ?? NaN);
    },
    // x[N,V] row n ·= scales[n]
    scaleRows(x, scales, N, V) {
      if (!(scales instanceof Float32Array)) throw new Error('scaleRows: scales must be a Float32Array in the kernels\' memory');
      k.scaleRows(ptr(x), ptr(scales), N, V);
    },
  };
}
