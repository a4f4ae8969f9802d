// Inference: one token at a time with a key/value cache, so each new token costs one pass over the
// weights (≈ 2 × params FLOPs) instead of re-running the whole context; plus sampling.

import type { Gpt } from './gpt';
import { Floats, geluForward, layernormForward, matmulForward } from './layers';
import { Rng } from './rng';

export class InferenceSession {
  private readonly model: Gpt;
  /** Per layer: keys and values of every cached position, [contextLength, C] each. */
  private readonly kCache: Float32Array[];
  private readonly vCache: Float32Array[];
  /** Token ids currently in the cache, in order. */
  private readonly tokens: number[] = [];
  // Scratch for one position.
  private readonly x: Float32Array; private readonly ln: Float32Array; private readonly qkv: Float32Array;
  private readonly atty: Float32Array; private readonly tmp: Float32Array; private readonly fch: Float32Array;
  private readonly fchGelu: Float32Array; private readonly att: Float32Array; private readonly logits: Float32Array;
  private readonly stat: Float32Array;
  private readonly w: { [name: string]: Floats };

  constructor(model: Gpt) {
    this.model = model;
    const { dModel: C, contextLength: P, nLayer: L, vocabSize: V } = model.cfg;
    this.kCache = Array.from({ length: L }, () => new Float32Array(P * C));
    this.vCache = Array.from({ length: L }, () => new Float32Array(P * C));
    this.x = new Float32Array(C); this.ln = new Float32Array(C); this.qkv = new Float32Array(3 * C);
    this.atty = new Float32Array(C); this.tmp = new Float32Array(C); this.fch = new Float32Array(4 * C);
    this.fchGelu = new Float32Array(4 * C); this.att = new Float32Array(P); this.logits = new Float32Array(V);
    this.stat = new Float32Array(2);
    this.w = {};
    for (const t of model.layout) this.w[t.name] = model.params.subarray(t.offset, t.offset + t.size);
  }

  get length(): number {
    return this.tokens.length;
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
   * Makes the cache hold exactly `ids` (the last contextLength of them), reusing the cached
   * prefix, and returns the logits [V] for the next token. The returned array is reused.
   */
  prime(ids: ArrayLike<number>): Float32Array {
    const P = this.model.cfg.contextLength;
    const start = Math.max(0, ids.length - P);
    const window = Array.from({ length: ids.length - start }, (_, i) => ids[start + i]!);
    if (window.length === 0) throw new Error('prime: empty context');
    // Positions are absolute within the window, so a shifted window cannot reuse the cache.
    const keep = start === 0 ? Math.min(this.commonPrefix(window), window.length - 1) : 0;
    this.tokens.length = keep;
    let logits: Float32Array | null = null;
    for (let i = keep; i < window.length; i++) logits = this.step(window[i]!);
    return logits!;
  }

  /** Appends one token (sliding the window when the context is full); returns logits [V]. */
  append(id: number): Float32Array {
    const P = this.model.cfg.contextLength;
    if (this.tokens.length >= P) {
      // Keep the most recent half and re-encode it at positions 0..: amortises the recompute.
      const kept = this.tokens.slice(this.tokens.length - Math.floor(P / 2));
      this.tokens.length = 0;
      for (const t of kept) this.step(t);
    }
    return this.step(id);
  }

  /** Forward of one token at position tokens.length. Shapes: x[C], qkv[3C], fch[4C], logits[V]. */
  private step(id: number): Float32Array {
    const { dModel: C, nHead: NH, nLayer: L, vocabSize: V } = this.model.cfg;
    if (!(id >= 0 && id < V)) throw new Error(`token id ${id} out of range [0, ${V})`);
    const pos = this.tokens.length;
    const hs = C / NH;
    const scale = 1 / Math.sqrt(hs);
    const w = this.w;
    const { x, ln, qkv, atty, tmp, fch, fchGelu, att, stat } = this;
    const wte = w['transformer.wte.weight']!;
    const wpe = w['transformer.wpe.weight']!;
    for (let c = 0; c < C; c++) x[c] = wte[id * C + c]! + wpe[pos * C + c]!;
    for (let l = 0; l < L; l++) {
      const p = `transformer.h.${l}.`;
      layernormForward(ln, stat.subarray(0, 1), stat.subarray(1, 2), x, w[p + 'ln_1.weight']!, w[p + 'ln_1.bias']!, 1, C);
      matmulForward(qkv, ln, w[p + 'attn.c_attn.weight']!, w[p + 'attn.c_attn.bias']!, 1, C, 3 * C);
      const kc = this.kCache[l]!;
      const vc = this.vCache[l]!;
      kc.set(qkv.subarray(C, 2 * C), pos * C);
      vc.set(qkv.subarray(2 * C, 3 * C), pos * C);
      for (let h = 0; h < NH; h++) {
        const ho = h * hs;
        let max = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let s = 0;
          for (let i = 0; i < hs; i++) s += qkv[ho + i]! * kc[t * C + ho + i]!;
          s *= scale;
          att[t] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) {
          const e = Math.exp(att[t]! - max);
          att[t] = e;
          sum += e;
        }
        for (let i = 0; i < hs; i++) atty[ho + i] = 0;
        for (let t = 0; t <= pos; t++) {
          const pr = att[t]! / sum;
          for (let i = 0; i < hs; i++) atty[ho + i] += pr * vc[t * C + ho + i]!;
        }
      }
      matmulForward(tmp, atty, w[p + 'attn.c_proj.weight']!, w[p + 'attn.c_proj.bias']!, 1, C, C);
      for (let c = 0; c < C; c++) x[c] += tmp[c]!;
      layernormForward(ln, stat.subarray(0, 1), stat.subarray(1, 2), x, w[p + 'ln_2.weight']!, w[p + 'ln_2.bias']!, 1, C);
      matmulForward(fch, ln, w[p + 'mlp.c_fc.weight']!, w[p + 'mlp.c_fc.bias']!, 1, C, 4 * C);
      geluForward(fchGelu, fch, 4 * C);
      matmulForward(tmp, fchGelu, w[p + 'mlp.c_proj.weight']!, w[p + 'mlp.c_proj.bias']!, 1, 4 * C, C);
      for (let c = 0; c < C; c++) x[c] += tmp[c]!;
    }
    layernormForward(ln, stat.subarray(0, 1), stat.subarray(1, 2), x, w['transformer.ln_f.weight']!, w['transformer.ln_f.bias']!, 1, C);
    const logits = this.logits;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += ln[c]! * wte[v * C + c]!;
      logits[v] = s;
    }
    this.tokens.push(id);
    return logits;
  }
}

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]; 1 = off. */
  topP: number;
}

/** Picks the next token from logits[V]. Also returns its log-probability (for confidence cut-offs). */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng, banned?: ReadonlySet<number>): { id: number; logProb: number } {
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
