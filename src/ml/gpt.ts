// GPT-2: token + learned position embeddings, pre-LN blocks (causal multi-head attention, GELU
// MLP 4x), final LayerNorm, output head tied to the token embedding.
//
// Memory, llm.c-style: every parameter lives in ONE flat array (`params`), its gradient in ONE
// flat array (`grads`) with the same layout; tensors are subarray views into them. Activations of
// a (B, T) batch are views into one more array, allocated once for the largest batch seen.

import { ModelConfig, validateModelConfig } from './config';
import { layoutSize, parameterLayout, ParamTensor } from './paramLayout';
import { mixtureGradientWeight, type Floats, type MixtureLoss } from './layers';
import { Ops, tsOps } from './ops';
import { FloatAlloc, heapAlloc } from './arena';
import { Rng } from './rng';

export type DType = 'float32' | 'float64';

export interface GptOptions {
  /** Heap arrays of this type when no allocator is given (float64 is for gradient checks). */
  dtype?: DType;
  /** Where params, grads and activations live (e.g. a WasmArena's alloc for the SIMD kernels). */
  alloc?: FloatAlloc;
  ops?: Ops;
  /**
   * Share another model's parameters (same config) instead of allocating them: worker threads
   * each own gradients and activations but read one copy of the weights.
   */
  params?: Floats;
  /** Use this gradient array instead of allocating one (e.g. a region of shared memory). */
  grads?: Floats;
}

/** Views of one kind of array (params or grads) by role. */
interface LayerTensors {
  ln1w: Floats; ln1b: Floats; qkvw: Floats; qkvb: Floats; projw: Floats; projb: Floats;
  ln2w: Floats; ln2b: Floats; fcw: Floats; fcb: Floats; fcprojw: Floats; fcprojb: Floats;
}
interface ModelTensors { wte: Floats; wpe: Floats; layers: LayerTensors[]; lnfw: Floats; lnfb: Floats }

function viewTensors(flat: Floats, layout: ParamTensor[], nLayer: number): ModelTensors {
  const byName = new Map(layout.map((t) => [t.name, flat.subarray(t.offset, t.offset + t.size)]));
  const get = (name: string): Floats => {
    const v = byName.get(name);
    if (v === undefined) throw new Error(`internal: no tensor ${name}`);
    return v;
  };
  const layers: LayerTensors[] = [];
  for (let l = 0; l < nLayer; l++) {
    const p = `transformer.h.${l}.`;
    layers.push({
      ln1w: get(p + 'ln_1.weight'), ln1b: get(p + 'ln_1.bias'),
      qkvw: get(p + 'attn.c_attn.weight'), qkvb: get(p + 'attn.c_attn.bias'),
      projw: get(p + 'attn.c_proj.weight'), projb: get(p + 'attn.c_proj.bias'),
      ln2w: get(p + 'ln_2.weight'), ln2b: get(p + 'ln_2.bias'),
      fcw: get(p + 'mlp.c_fc.weight'), fcb: get(p + 'mlp.c_fc.bias'),
      fcprojw: get(p + 'mlp.c_proj.weight'), fcprojb: get(p + 'mlp.c_proj.bias'),
    });
  }
  return { wte: get('transformer.wte.weight'), wpe: get('transformer.wpe.weight'), layers, lnfw: get('transformer.ln_f.weight'), lnfb: get('transformer.ln_f.bias') };
}

/**
 * Rows of logits computed at a time. The output head's logits for all rows would be N × V floats
 * (41 MB for the seed preset's batch); in chunks, the loss and the head's gradient are computed
 * chunk by chunk and the full matrix never exists. 128 rows keep the matrix products efficient.
 */
export const HEAD_CHUNK_ROWS = 128;

/**
 * The activation buffers of a batch of B sequences of T tokens (N = B·T rows), in floats: the one
 * table of their sizes. The model allocates exactly these, the training pool budgets each
 * worker's memory by their totals, and an inference session sizes its scratch as one sequence of
 * contextLength tokens.
 */
export function activationSizes(cfg: ModelConfig, B: number, T: number) {
  const { dModel: C, nHead: NH, vocabSize: V } = cfg;
  const N = B * T;
  return {
    /** Saved by forward for backward, per layer. */
    layer: {
      ln1: N * C, ln1Mean: N, ln1Rstd: N, // [N,C], [N], [N]
      qkv: N * 3 * C, // [N,3C]
      atty: N * C, // [N,C]
      att: B * NH * T * T, // [B,NH,T,T]
      residual2: N * C, // [N,C]  (attention projection written here, then the residual added in place)
      ln2: N * C, ln2Mean: N, ln2Rstd: N,
      fch: N * 4 * C, // [N,4C] (GELU's input; its output is recomputed in backward, not stored)
      residual3: N * C, // [N,C]
    },
    /** Outside the layers, once. */
    model: {
      encoded: N * C, // [N,C] token + position embeddings: the residual stream entering layer 0
      lnf: N * C, lnfMean: N, lnfRstd: N,
      logitsChunk: Math.min(N, HEAD_CHUNK_ROWS) * V, // [min(N, HEAD_CHUNK_ROWS), V]: never all N × V
      losses: N, // [N]
      scratch: N * C, // [N,C] forward temporaries
      gelu: N * 4 * C, // [N,4C] GELU output of the layer being computed (forward and backward)
    },
    /** Gradients of activations, shared by all layers (backward walks the layers one at a time). */
    grad: {
      dres: N * C, dln: N * C, datty: N * C, // [N,C]
      dqkv: N * 3 * C, // [N,3C]
      dfch: N * 4 * C, dfchGelu: N * 4 * C, // [N,4C]
      dattScratch: T * T, // [T,T]
      rowWeight: Math.min(N, HEAD_CHUNK_ROWS), // [rows of a head chunk] the mixture loss's gradient weights
    },
  };
}

type ActivationSizes = ReturnType<typeof activationSizes>;
/** A view per entry of a size table. */
type Views<Sizes> = { [K in keyof Sizes]: Floats };
type LayerActs = Views<ActivationSizes['layer']>;
interface Acts extends Views<ActivationSizes['model']> {
  /** Capacity: buffers hold up to B sequences of exactly T tokens. */
  B: number; T: number;
  layers: LayerActs[];
}
type GradActs = Views<ActivationSizes['grad']>;

const sumSizes = (sizes: Record<string, number>): number => Object.values(sizes).reduce((a, b) => a + b, 0);

/** Floats of the activations saved by forward for a (B, T) batch (one allocation). */
export function activationFloats(cfg: ModelConfig, B: number, T: number): number {
  const sizes = activationSizes(cfg, B, T);
  return sumSizes(sizes.model) + cfg.nLayer * sumSizes(sizes.layer);
}

/** Floats of the activation-gradient buffers backward needs for a (B, T) batch. */
export function gradActivationFloats(cfg: ModelConfig, B: number, T: number): number {
  return sumSizes(activationSizes(cfg, B, T).grad);
}

/** One view per entry of `sizes`, cut in order from `take`. */
function views<Sizes extends Record<string, number>>(sizes: Sizes, take: (n: number) => Floats): Views<Sizes> {
  const out: Partial<Record<keyof Sizes, Floats>> = {};
  for (const name of Object.keys(sizes) as Array<keyof Sizes>) out[name] = take(sizes[name]);
  return out as Views<Sizes>;
}

function allocator(alloc: FloatAlloc, total: number) {
  const flat = alloc(total);
  let used = 0;
  return (n: number): Floats => {
    const v = flat.subarray(used, used + n);
    used += n;
    return v;
  };
}

export class Gpt {
  readonly cfg: ModelConfig;
  readonly dtype: DType;
  readonly layout: ParamTensor[];
  readonly numParams: number;
  /** All parameters, flat; layout gives each tensor's offset. */
  readonly params: Floats;
  /** All parameter gradients, same layout as params. */
  private gradsArray: Floats | null;
  private readonly p: ModelTensors;
  private gradViews: ModelTensors | null = null;
  private acts: Acts | null = null;
  private gacts: GradActs | null = null;
  private lastIds: ArrayLike<number> | null = null;
  private lastHadTargets = false;
  private lastShape = { B: 0, T: 0 };
  /** [N,V] logits of the last forward without targets (allocated only when asked for). */
  private fullLogits: Floats | null = null;
  readonly ops: Ops;
  /** Where this model allocates (also used by inference sessions for their caches). */
  readonly alloc: FloatAlloc;

  constructor(cfg: ModelConfig, options: DType | GptOptions = {}) {
    const opts: GptOptions = typeof options === 'string' ? { dtype: options } : options;
    this.cfg = { ...cfg };
    this.dtype = opts.dtype ?? 'float32';
    this.alloc = opts.alloc ?? heapAlloc(this.dtype);
    this.ops = opts.ops ?? tsOps;
    validateModelConfig(cfg);
    this.layout = parameterLayout(cfg);
    this.numParams = layoutSize(this.layout);
    if (opts.params !== undefined && opts.params.length !== this.numParams) throw new Error(`shared params have ${opts.params.length} values, the model needs ${this.numParams}`);
    this.params = opts.params ?? this.alloc(this.numParams);
    if (opts.grads !== undefined && opts.grads.length !== this.numParams) throw new Error(`grads have ${opts.grads.length} values, the model needs ${this.numParams}`);
    // Allocated on first use: a model loaded only for inference never pays for gradients.
    this.gradsArray = opts.grads ?? null;
    this.p = viewTensors(this.params, this.layout, cfg.nLayer);
  }

  /** All parameter gradients, flat, same layout as params. */
  get grads(): Floats {
    return (this.gradsArray ??= this.alloc(this.numParams));
  }

  private get g(): ModelTensors {
    return (this.gradViews ??= viewTensors(this.grads, this.layout, this.cfg.nLayer));
  }

  /**
   * GPT-2 initialisation: N(0, 0.02) for matrices, residual projections scaled by 1/sqrt(2L)
   * so the residual stream's variance does not grow with depth; LN weight 1, biases 0.
   */
  initWeights(rng: Rng): void {
    const std = 0.02;
    const projStd = std / Math.sqrt(2 * this.cfg.nLayer);
    for (const t of this.layout) {
      const view = this.params.subarray(t.offset, t.offset + t.size);
      if (t.name.endsWith('ln_1.weight') || t.name.endsWith('ln_2.weight') || t.name.endsWith('ln_f.weight')) view.fill(1);
      else if (t.shape.length === 1) view.fill(0);
      else {
        const s = t.name.endsWith('c_proj.weight') ? projStd : std;
        for (let i = 0; i < view.length; i++) view[i] = rng.normal() * s;
      }
    }
  }

  tensor(name: string): Floats {
    const t = this.layout.find((x) => x.name === name);
    if (t === undefined) throw new Error(`no parameter named ${name}`);
    return this.params.subarray(t.offset, t.offset + t.size);
  }

  gradTensor(name: string): Floats {
    const t = this.layout.find((x) => x.name === name);
    if (t === undefined) throw new Error(`no parameter named ${name}`);
    return this.grads.subarray(t.offset, t.offset + t.size);
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  private ensureActs(B: number, T: number): Acts {
    const a = this.acts;
    // Smaller batches of the same length reuse the buffers: every op indexes by its own (B, T).
    if (a !== null && B <= a.B && a.T === T) return a;
    const sizes = activationSizes(this.cfg, B, T);
    const take = allocator(this.alloc, activationFloats(this.cfg, B, T));
    const model = views(sizes.model, take);
    const layers = Array.from({ length: this.cfg.nLayer }, () => views(sizes.layer, take));
    this.acts = { B, T, ...model, layers };
    this.fullLogits = null;
    this.gacts = null;
    return this.acts;
  }

  /** Sized like the activations' capacity (not the current batch), so every batch fits. */
  private ensureGradActs(): GradActs {
    if (this.gacts !== null) return this.gacts;
    const { B, T } = this.acts!;
    this.gacts = views(activationSizes(this.cfg, B, T).grad, allocator(this.alloc, gradActivationFloats(this.cfg, B, T)));
    return this.gacts;
  }

  /**
   * Forward pass over ids[B*T] (row-major [B,T]).
   * - targets null: computes the logits [B*T, V], readable through logitsView(); returns NaN.
   * - targets given: returns the mean cross-entropy (or Σ loss / lossDenominator) and, fused with
   *   it chunk by chunk, the output head's gradients: d/d(wte) is ACCUMULATED into grads and
   *   d/d(ln_f output) is kept for backward(). Call zeroGrad() first, backward() after.
   * - mixture given (the counts' odds of each target, ml/countsOdds.ts): the gradient is the
   *   mixture loss's, each position's cross-entropy gradient times layers.mixtureGradientWeight.
   *   The returned loss is still the GPT's own cross-entropy.
   */
  forward(ids: ArrayLike<number>, targets: ArrayLike<number> | null, B: number, T: number, lossDenominator?: number, mixture?: MixtureLoss | null): number {
    return this.run(ids, targets, B, T, targets === null ? 'logits' : 'train', lossDenominator, mixture ?? null);
  }

  /**
   * Cross-entropy only (no gradient written): for evaluation. Mean over the targets, or
   * Σ loss / lossDenominator for a micro-batch of a larger evaluation batch.
   */
  evaluate(ids: ArrayLike<number>, targets: ArrayLike<number>, B: number, T: number, lossDenominator?: number): number {
    return this.run(ids, targets, B, T, 'loss', lossDenominator);
  }

  private run(ids: ArrayLike<number>, targets: ArrayLike<number> | null, B: number, T: number, mode: 'logits' | 'loss' | 'train', lossDenominator?: number, mixture: MixtureLoss | null = null): number {
    const { dModel: C, nHead: NH, vocabSize: V, contextLength } = this.cfg;
    if (T > contextLength) throw new Error(`sequence length ${T} exceeds the model's context ${contextLength}`);
    if (ids.length < B * T) throw new Error(`forward: expected ${B * T} ids, got ${ids.length}`);
    for (let i = 0; i < B * T; i++) {
      const id = ids[i]!;
      if (!(id >= 0 && id < V)) throw new Error(`forward: token id ${id} out of range [0, ${V})`);
    }
    const a = this.ensureActs(B, T);
    this.lastShape = { B, T };
    const N = B * T;
    const p = this.p;
    const ops = this.ops;
    ops.encoderForward(a.encoded, ids, p.wte, p.wpe, B, T, C);
    let res = a.encoded;
    for (let l = 0; l < this.cfg.nLayer; l++) {
      const w = p.layers[l]!;
      const x = a.layers[l]!;
      ops.layernormForward(x.ln1, x.ln1Mean, x.ln1Rstd, res, w.ln1w, w.ln1b, N, C);
      ops.matmulForward(x.qkv, x.ln1, w.qkvw, w.qkvb, N, C, 3 * C);
      ops.attentionForward(x.atty, x.att, x.qkv, B, T, C, NH);
      ops.matmulForward(a.scratch, x.atty, w.projw, w.projb, N, C, C);
      ops.residualForward(x.residual2, res, a.scratch, N * C);
      ops.layernormForward(x.ln2, x.ln2Mean, x.ln2Rstd, x.residual2, w.ln2w, w.ln2b, N, C);
      ops.matmulForward(x.fch, x.ln2, w.fcw, w.fcb, N, C, 4 * C);
      ops.geluForward(a.gelu, x.fch, N * 4 * C);
      ops.matmulForward(a.scratch, a.gelu, w.fcprojw, w.fcprojb, N, 4 * C, C);
      ops.residualForward(x.residual3, x.residual2, a.scratch, N * C);
      res = x.residual3;
    }
    ops.layernormForward(a.lnf, a.lnfMean, a.lnfRstd, res, p.lnfw, p.lnfb, N, C);
    this.lastIds = ids;
    this.lastHadTargets = mode === 'train';
    if (mode === 'logits' || targets === null) {
      this.fullLogits ??= this.alloc(N * V);
      ops.headForward(this.fullLogits, a.lnf, p.wte, N, C, V);
      return NaN;
    }
    let counted = 0;
    for (let i = 0; i < N; i++) if (targets[i]! >= 0) counted++;
    // A micro-batch of a larger batch divides by the whole batch's target count, so the
    // micro-batch gradients (and losses) simply add up to the full batch's.
    const denom = lossDenominator ?? counted;
    if (mode === 'train' && !(denom > 0)) throw new Error('forward: no targets to compute a loss on');
    const g = mode === 'train' ? this.ensureGradActs() : null;
    if (g !== null) g.dln.fill(0); // receives d(loss)/d(ln_f output), consumed by backward()
    const tg = targets instanceof Int32Array ? targets : Int32Array.from({ length: N }, (_, i) => targets[i]!);
    let sum = 0;
    for (let r0 = 0; r0 < N; r0 += HEAD_CHUNK_ROWS) {
      const rows = Math.min(HEAD_CHUNK_ROWS, N - r0);
      const logits = a.logitsChunk.subarray(0, rows * V);
      const lnfRows = a.lnf.subarray(r0 * C, (r0 + rows) * C);
      // logits[rows,V] = lnf[rows,C]·wteᵀ; then softmax-CE, in place into dlogits when training
      ops.headForward(logits, lnfRows, p.wte, rows, C, V);
      sum += ops.crossEntropyForwardBackward(logits, a.losses.subarray(r0, r0 + rows), tg.subarray(r0, r0 + rows), rows, V, g === null ? null : 1 / denom);
      if (g !== null && mixture !== null) {
        // dlogits[rows,V] ·= the mixture loss's weight per row (rows without a target are 0 already).
        const { odds, plainShare } = mixture;
        for (let r = 0; r < rows; r++) g.rowWeight[r] = mixtureGradientWeight(a.losses[r0 + r]!, odds[r0 + r]!, plainShare);
        ops.scaleRows(logits, g.rowWeight, rows, V);
      }
      if (g !== null) ops.headBackward(g.dln.subarray(r0 * C, (r0 + rows) * C), this.g.wte, logits, lnfRows, p.wte, rows, C, V);
    }
    return sum / Math.max(1, denom);
  }

  /** Logits [B*T, V] of the last forward without targets. */
  logitsView(): Floats {
    if (this.fullLogits === null || this.lastHadTargets) throw new Error('logitsView: run forward(ids, null, …) first');
    return this.fullLogits;
  }

  /** Per-position losses [B*T] of the last forward with targets (or evaluate). */
  lossesView(): Floats {
    if (this.acts === null) throw new Error('lossesView: run forward first');
    return this.acts.losses;
  }

  /** Accumulates d(loss)/d(params) into grads, continuing from forward(ids, targets) (which did the head). */
  backward(): void {
    const a = this.acts;
    const ids = this.lastIds;
    if (a === null || ids === null || !this.lastHadTargets) throw new Error('backward: run forward with targets first');
    const { dModel: C, nHead: NH } = this.cfg;
    const { B, T } = this.lastShape;
    const N = B * T;
    const g = this.ensureGradActs();
    const p = this.p;
    const ops = this.ops;
    const gp = this.g;
    const L = this.cfg.nLayer;
    const lastRes = L > 0 ? a.layers[L - 1]!.residual3 : a.encoded;

    // The head's gradient was computed with the loss in forward(); g.dln holds d/d(ln_f output).
    g.dres.fill(0);
    ops.layernormBackward(g.dres, gp.lnfw, gp.lnfb, g.dln, lastRes, p.lnfw, a.lnfMean, a.lnfRstd, N, C);

    // g.dres holds d(loss)/d(residual3 of layer l) on entry and d/d(its input) on exit.
    for (let l = L - 1; l >= 0; l--) {
      const w = p.layers[l]!;
      const dw = gp.layers[l]!;
      const x = a.layers[l]!;
      const res = l === 0 ? a.encoded : a.layers[l - 1]!.residual3;
      // MLP branch: residual3 = residual2 + fcproj(gelu(fc(ln2(residual2))))
      ops.geluForward(a.gelu, x.fch, N * 4 * C); // recomputed: cheaper than keeping it per layer
      g.dfchGelu.fill(0);
      ops.matmulBackward(g.dfchGelu, dw.fcprojw, dw.fcprojb, g.dres, a.gelu, w.fcprojw, N, 4 * C, C);
      g.dfch.fill(0);
      ops.geluBackward(g.dfch, x.fch, g.dfchGelu, N * 4 * C);
      g.dln.fill(0);
      ops.matmulBackward(g.dln, dw.fcw, dw.fcb, g.dfch, x.ln2, w.fcw, N, C, 4 * C);
      ops.layernormBackward(g.dres, dw.ln2w, dw.ln2b, g.dln, x.residual2, w.ln2w, x.ln2Mean, x.ln2Rstd, N, C);
      // Attention branch: residual2 = res + proj(attn(qkv(ln1(res))))
      g.datty.fill(0);
      ops.matmulBackward(g.datty, dw.projw, dw.projb, g.dres, x.atty, w.projw, N, C, C);
      g.dqkv.fill(0);
      ops.attentionBackward(g.dqkv, g.dattScratch, g.datty, x.qkv, x.att, B, T, C, NH);
      g.dln.fill(0);
      ops.matmulBackward(g.dln, dw.qkvw, dw.qkvb, g.dqkv, x.ln1, w.qkvw, N, C, 3 * C);
      ops.layernormBackward(g.dres, dw.ln1w, dw.ln1b, g.dln, res, w.ln1w, x.ln1Mean, x.ln1Rstd, N, C);
    }
    ops.encoderBackward(gp.wte, gp.wpe, g.dres, ids, B, T, C);
  }
}
