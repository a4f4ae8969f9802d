// Inference with a key/value cache. A prompt is prefilled in one batched pass (matrix products
// of all its rows at once, so they run at the kernels' speed), then each new token costs one pass
// over the weights with M = 1. Consecutive prompts that share a prefix (the user typed one more
// character) keep the cached keys and values of that prefix and only prefill the rest.
// Buffers come from the model's allocator, so with the WASM backend they live in kernel memory.

import { activationSizes, type Gpt } from './gpt';
import type { Floats } from './layers';
import { Rng } from './rng';

interface LayerWeights {
  ln1w: Floats; ln1b: Floats; qkvw: Floats; qkvb: Floats; projw: Floats; projb: Floats;
  ln2w: Floats; ln2b: Floats; fcw: Floats; fcb: Floats; fcprojw: Floats; fcprojb: Floats;
}

export class InferenceSession {
  private readonly model: Gpt;
  /** Per layer: keys and values of every cached position, [contextLength, C] each. */
  private readonly kCache: Floats[];
  private readonly vCache: Floats[];
  /** Token ids currently in the cache, in order (position i holds tokens[i]). */
  private readonly tokens: number[] = [];
  // Scratch for up to P rows, sized as the activations of one sequence of P tokens: x (the
  // residual stream), ln, atty, tmp [P,C]; qkv [P,3C]; fch, gelu [P,4C]; mean, rstd [P].
  private readonly x: Floats; private readonly ln: Floats; private readonly qkv: Floats; private readonly atty: Floats;
  private readonly tmp: Floats; private readonly fch: Floats; private readonly gelu: Floats;
  private readonly mean: Floats; private readonly rstd: Floats;
  /** [NH, P, P] attention probabilities of a prefill from position 0. */
  private readonly attBlock: Floats;
  /** [P] scores of one row against the cache. */
  private readonly attRow: Float64Array;
  private readonly logits: Floats;
  private readonly layers: LayerWeights[];
  private readonly wte: Floats; private readonly wpe: Floats; private readonly lnfw: Floats; private readonly lnfb: Floats;

  constructor(model: Gpt) {
    this.model = model;
    const { dModel: C, contextLength: P, nLayer: L, vocabSize: V } = model.cfg;
    const a = model.alloc;
    this.kCache = Array.from({ length: L }, () => a(P * C));
    this.vCache = Array.from({ length: L }, () => a(P * C));
    const { layer, model: outside } = activationSizes(model.cfg, 1, P);
    this.x = a(outside.encoded); this.ln = a(layer.ln1); this.qkv = a(layer.qkv); this.atty = a(layer.atty); this.tmp = a(outside.scratch);
    this.fch = a(layer.fch); this.gelu = a(outside.gelu); this.mean = a(layer.ln1Mean); this.rstd = a(layer.ln1Rstd);
    this.attBlock = a(layer.att); this.attRow = new Float64Array(P); this.logits = a(V);
    const t = (name: string): Floats => model.tensor(name);
    this.wte = t('transformer.wte.weight'); this.wpe = t('transformer.wpe.weight');
    this.lnfw = t('transformer.ln_f.weight'); this.lnfb = t('transformer.ln_f.bias');
    this.layers = Array.from({ length: L }, (_, l) => {
      const p = `transformer.h.${l}.`;
      return {
        ln1w: t(p + 'ln_1.weight'), ln1b: t(p + 'ln_1.bias'), qkvw: t(p + 'attn.c_attn.weight'), qkvb: t(p + 'attn.c_attn.bias'),
        projw: t(p + 'attn.c_proj.weight'), projb: t(p + 'attn.c_proj.bias'), ln2w: t(p + 'ln_2.weight'), ln2b: t(p + 'ln_2.bias'),
        fcw: t(p + 'mlp.c_fc.weight'), fcb: t(p + 'mlp.c_fc.bias'), fcprojw: t(p + 'mlp.c_proj.weight'), fcprojb: t(p + 'mlp.c_proj.bias'),
      };
    });
  }

  get length(): number {
    return this.tokens.length;
  }

  /** The cached token ids (a copy). */
  cachedTokens(): number[] {
    return this.tokens.slice();
  }

  reset(): void {
    this.tokens.length = 0;
  }

  /** Number of leading tokens shared with `ids` (what can be kept of the cache). */
  commonPrefix(ids: ArrayLike<number>): number {
    let n = 0;
    while (n < this.tokens.length && n < ids.length && this.tokens[n] === ids[n]) n++;
    return n;
  }

  /**
   * Makes the cache hold exactly `ids` (at most contextLength of them, position 0 = ids[0]),
   * reusing the cached common prefix, and returns the logits [V] for the next token.
   * The returned array is reused by the next call.
   */
  prime(ids: ArrayLike<number>): Floats {
    const P = this.model.cfg.contextLength;
    if (ids.length === 0) throw new Error('prime: empty context');
    if (ids.length > P) throw new Error(`prime: ${ids.length} tokens exceed the context of ${P}; pass a window`);
    // At least the last token is recomputed: its logits are the answer.
    const keep = Math.min(this.commonPrefix(ids), ids.length - 1);
    this.tokens.length = keep;
    const rest = Array.from({ length: ids.length - keep }, (_, i) => ids[keep + i]!);
    return this.prefill(rest);
  }

  /** Appends one token (sliding the window when the context is full); returns logits [V]. */
  append(id: number): Floats {
    const P = this.model.cfg.contextLength;
    if (this.tokens.length >= P) {
      // Keep the most recent half, re-encoded at positions 0..: amortises the recompute.
      const kept = this.tokens.slice(this.tokens.length - Math.floor(P / 2));
      this.tokens.length = 0;
      return this.prefill([...kept, id]);
    }
    return this.prefill([id]);
  }

  /**
   * Runs `ids` at positions tokens.length.. as one batch of M rows, appending their keys and
   * values to the cache; returns the logits of the last row.
   * Shapes: x[M,C], qkv[M,3C], fch/gelu[M,4C]; cache [P,C] per layer.
   */
  private prefill(ids: number[]): Floats {
    const { dModel: C, nHead: NH, vocabSize: V } = this.model.cfg;
    const ops = this.model.ops;
    const M = ids.length;
    const pos0 = this.tokens.length;
    const hs = C / NH;
    for (const id of ids) if (!(id >= 0 && id < V)) throw new Error(`token id ${id} out of range [0, ${V})`);
    const x = this.x.subarray(0, M * C), ln = this.ln.subarray(0, M * C), qkv = this.qkv.subarray(0, M * 3 * C);
    const atty = this.atty.subarray(0, M * C), tmp = this.tmp.subarray(0, M * C);
    const fch = this.fch.subarray(0, M * 4 * C), gelu = this.gelu.subarray(0, M * 4 * C);
    const mean = this.mean.subarray(0, M), rstd = this.rstd.subarray(0, M);
    for (let i = 0; i < M; i++) {
      const o = i * C, e = ids[i]! * C, p = (pos0 + i) * C;
      for (let c = 0; c < C; c++) x[o + c] = this.wte[e + c]! + this.wpe[p + c]!;
    }
    for (let l = 0; l < this.layers.length; l++) {
      const w = this.layers[l]!;
      const kc = this.kCache[l]!, vc = this.vCache[l]!;
      ops.layernormForward(ln, mean, rstd, x, w.ln1w, w.ln1b, M, C);
      ops.matmulForward(qkv, ln, w.qkvw, w.qkvb, M, C, 3 * C);
      for (let i = 0; i < M; i++) {
        kc.set(qkv.subarray(i * 3 * C + C, i * 3 * C + 2 * C), (pos0 + i) * C);
        vc.set(qkv.subarray(i * 3 * C + 2 * C, i * 3 * C + 3 * C), (pos0 + i) * C);
      }
      if (pos0 === 0 && M > 1) {
        // A fresh prompt: plain causal attention over its own rows (the batched kernel).
        ops.attentionForward(atty, this.attBlock.subarray(0, NH * M * M), qkv, 1, M, C, NH);
      } else {
        this.cachedAttention(atty, qkv, kc, vc, pos0, M, C, NH, hs);
      }
      ops.matmulForward(tmp, atty, w.projw, w.projb, M, C, C);
      ops.residualForward(x, x, tmp, M * C);
      ops.layernormForward(ln, mean, rstd, x, w.ln2w, w.ln2b, M, C);
      ops.matmulForward(fch, ln, w.fcw, w.fcb, M, C, 4 * C);
      ops.geluForward(gelu, fch, M * 4 * C);
      ops.matmulForward(tmp, gelu, w.fcprojw, w.fcprojb, M, 4 * C, C);
      ops.residualForward(x, x, tmp, M * C);
    }
    // Only the last row's logits are needed.
    const last = x.subarray((M - 1) * C, M * C);
    const lnLast = ln.subarray(0, C);
    ops.layernormForward(lnLast, mean.subarray(0, 1), rstd.subarray(0, 1), last, this.lnfw, this.lnfb, 1, C);
    ops.headForward(this.logits, lnLast, this.wte, 1, C, V);
    for (const id of ids) this.tokens.push(id);
    return this.logits;
  }

  /** Row i (position pos0+i) attends to cached positions 0..pos0+i. out[M,C]; q from qkv[M,3C]. */
  private cachedAttention(out: Floats, qkv: Floats, kc: Floats, vc: Floats, pos0: number, M: number, C: number, NH: number, hs: number): void {
    const scale = 1 / Math.sqrt(hs);
    const att = this.attRow;
    for (let i = 0; i < M; i++) {
      const last = pos0 + i;
      for (let h = 0; h < NH; h++) {
        const q = i * 3 * C + h * hs;
        let max = -Infinity;
        for (let t = 0; t <= last; t++) {
          const k = t * C + h * hs;
          let s = 0;
          for (let d = 0; d < hs; d++) s += qkv[q + d]! * kc[k + d]!;
          s *= scale;
          att[t] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let t = 0; t <= last; t++) {
          const e = Math.exp(att[t]! - max);
          att[t] = e;
          sum += e;
        }
        const o = i * C + h * hs;
        for (let d = 0; d < hs; d++) out[o + d] = 0;
        for (let t = 0; t <= last; t++) {
          const pr = att[t]! / sum;
          const v = t * C + h * hs;
          for (let d = 0; d < hs; d++) out[o + d] += pr * vc[v + d]!;
        }
      }
    }
  }
}

/**
 * The part of a long prompt that fits the context with `reserve` positions left for new tokens.
 * The start moves in steps of a quarter context, not token by token, so while the user types the
 * window (and with it every cached key and value) stays the same for many keystrokes.
 */
export function contextWindow(ids: ArrayLike<number>, contextLength: number, reserve: number): number[] {
  const maxPrompt = Math.max(1, contextLength - reserve);
  const all = Array.from(ids);
  if (all.length <= maxPrompt) return all;
  const step = Math.max(1, Math.floor(contextLength / 4));
  const start = Math.ceil((all.length - maxPrompt) / step) * step;
  return all.slice(start);
}

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]; 1 = off. */
  topP: number;
}

/** Picks the next token from logits[V]. Also returns its log-probability (for confidence cut-offs). */
export function sampleToken(logits: Floats, opts: SamplingOptions, rng: Rng, banned?: ReadonlySet<number>): { id: number; logProb: number } {
  const V = logits.length;
  let max = -Infinity;
  let argmax = 0;
  for (let v = 0; v < V; v++) {
    if (banned?.has(v)) continue;
    if (logits[v]! > max) { max = logits[v]!; argmax = v; }
  }
  let sum = 0;
  for (let v = 0; v < V; v++) if (!banned?.has(v)) sum += Math.exp(logits[v]! - max);
  const logZ = Math.log(sum) + max;
  if (opts.temperature <= 0) return { id: argmax, logProb: logits[argmax]! - logZ };
  // Tempered distribution, then keep the smallest set of tokens whose mass reaches topP.
  const probs = new Float64Array(V);
  let tsum = 0;
  for (let v = 0; v < V; v++) {
    const p = banned?.has(v) ? 0 : Math.exp((logits[v]! - max) / opts.temperature);
    probs[v] = p;
    tsum += p;
  }
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]!);
  let kept = 0;
  let mass = 0;
  for (const v of order) {
    mass += probs[v]! / tsum;
    kept++;
    if (mass >= opts.topP) break;
  }
  let r = rng.next() * mass * tsum;
  for (let k = 0; k < kept; k++) {
    const v = order[k]!;
    r -= probs[v]!;
    if (r <= 0) return { id: v, logProb: logits[v]! - logZ };
  }
  const last = order[kept - 1]!;
  return { id: last, logProb: logits[last]! - logZ };
}
