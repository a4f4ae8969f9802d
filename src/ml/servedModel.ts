// The served model: the one definition of the next-token distribution the editor completes with.
// The editor (completion/engine.ts), `workspace-lm complete` and `eval` all decode through a
// ServedModel, and `eval`'s bits per byte and the weight fit score held-out tokens with
// servedTokenProbability — the same formulas — so what is measured is what is served.
//
// Three parts, each optional:
//   - the GPT (a KV-cached session over the prompt window, which may be a FIM prompt);
//   - the n-gram model (Kneser-Ney + file cache, ngram.ts), mixed in with the GPT's share λ per
//     n-gram bucket:              p_mix  = λ_b · p_gpt + (1 − λ_b) · p_ngram
//   - the copy model (copyModel.ts), mixed in with a share μ per match-length bucket:
//                                 p      = μ_c · p_copy + (1 − μ_c) · p_mix
// The n-gram and copy models follow the document's history (a longer stretch of the file than
// the GPT's window, never the FIM suffix); the GPT reads the window.
//
// Modes, for comparing what each part adds (the completion setting `model`, `complete --model`,
// and eval's ablations):
//   served  everything present, as above;
//   gpt     the network alone;
//   counts  the n-gram and copy models without the network: p = μ'_c · p_copy + (1 − μ'_c) · p_ngram,
//           with μ' fitted against the n-gram model alone (copyOverNgram).
// A part that is absent is left out of the formula (served without copy = GPT + n-gram; counts
// without copy = the n-gram model alone, eval's baseline).

import type { Floats } from './layers';
import { COMPLETION_MODELS, CompletionModelKind } from './config';
import { mixtureBuckets } from './ngram';
import { COPY_BUCKETS, copyBucket, CopyPrediction, mixCopy } from './copyModel';
import { fitCopyWeights, fitMixtureWeights, mixLogits, MixtureWeights } from './mixture';

/** The modes (the completion setting `model`). */
export const SERVED_MODEL_MODES = COMPLETION_MODELS;
export type ServedModelMode = CompletionModelKind;

export function isServedModelMode(x: unknown): x is ServedModelMode {
  return typeof x === 'string' && (SERVED_MODEL_MODES as readonly string[]).includes(x);
}

/** The mixture's weights, fitted on held-out tokens (fitServedWeights). */
export interface ServedWeights {
  /** λ: the GPT's share against the n-gram model, per n-gram bucket. */
  mixture: MixtureWeights;
  /** μ: the copy model's share against the GPT + n-gram mixture, per match-length bucket. */
  copy: MixtureWeights;
  /** μ': the copy model's share against the n-gram model alone (the counts mode). */
  copyOverNgram: MixtureWeights;
}

/** Per held-out token: the GPT's and the n-gram's probabilities and the n-gram bucket, the copy model's probability and bucket. */
export interface TokenScores { pGpt: number[]; pNgram: number[]; bucket: number[]; pCopy: number[]; copyBucket: number[] }

export function emptyScores(): TokenScores {
  return { pGpt: [], pNgram: [], bucket: [], pCopy: [], copyBucket: [] };
}

/** Appends one document's per-token scores: the GPT's NLLs, the n-gram's NLLs and buckets, the copy model's probabilities and buckets. */
export function appendScores(out: TokenScores, gptNll: ArrayLike<number>, ngram: { nll: ArrayLike<number>; bucket: ArrayLike<number> }, copy: { p: ArrayLike<number>; bucket: ArrayLike<number> }): void {
  for (let t = 0; t < gptNll.length; t++) {
    out.pGpt.push(Math.exp(-gptNll[t]!));
    out.pNgram.push(Math.exp(-ngram.nll[t]!));
    out.bucket.push(ngram.bucket[t]!);
    out.pCopy.push(copy.p[t]!);
    out.copyBucket.push(copy.bucket[t]!);
  }
}

/** Fits λ (GPT vs n-gram, per n-gram bucket), then μ (copy vs that mixture) and μ' (copy vs the n-gram alone), per match length. */
export function fitServedWeights(s: TokenScores, order: number): ServedWeights {
  const mixture = fitMixtureWeights(s.pGpt, s.pNgram, s.bucket, mixtureBuckets(order));
  const pMix = s.pGpt.map((g, i) => {
    const lam = mixture.weights[s.bucket[i]!]!;
    return lam * g + (1 - lam) * s.pNgram[i]!;
  });
  return {
    mixture,
    copy: fitCopyWeights(s.pCopy, pMix, s.copyBucket, COPY_BUCKETS),
    copyOverNgram: fitCopyWeights(s.pCopy, s.pNgram, s.copyBucket, COPY_BUCKETS),
  };
}

/** Which parts a served model mixes: its mode, and whether the copy model is in (eval's ablations leave it out). */
export interface ServedConfig {
  mode: ServedModelMode;
  /** Mix in the copy model (default true; false: served = GPT + n-gram, counts = the n-gram alone). */
  copy?: boolean;
}

/**
 * The served probability of one token from its parts' probabilities — the formula that
 * ServedModel's distributions follow for every token of the vocabulary.
 */
export function servedTokenProbability(cfg: ServedConfig, w: ServedWeights, pGpt: number, pNgram: number, bucket: number, pCopy: number, copyBucketIndex: number): number {
  const useCopy = cfg.copy !== false;
  if (cfg.mode === 'gpt') return pGpt;
  if (cfg.mode === 'counts') {
    if (!useCopy) return pNgram;
    const mu = w.copyOverNgram.weights[copyBucketIndex] ?? 0;
    return mu * pCopy + (1 - mu) * pNgram;
  }
  const lam = w.mixture.weights[bucket] ?? 0.5;
  const pm = lam * pGpt + (1 - lam) * pNgram;
  if (!useCopy) return pm;
  const mu = w.copy.weights[copyBucketIndex] ?? 0;
  return mu * pCopy + (1 - mu) * pm;
}

/** The GPT as the served model uses it: a KV-cached session over the prompt window (ml/sample.ts's InferenceSession). */
export interface WindowSession {
  /** Leading tokens shared with the current window (kept by the next prime). */
  commonPrefix(ids: ArrayLike<number>): number;
  /** Makes the window exactly `ids`; returns logits for the next token. */
  prime(ids: ArrayLike<number>): Floats;
  /** Appends one token; returns logits for the next. */
  append(id: number): Floats;
}

/** A part that follows the document token by token (NgramSession, CopySession). */
export interface HistoryPart {
  reset(): void;
  push(id: number): void;
  /** Undoes the last push (throws when it cannot: then the history is replayed). */
  pop(): void;
}

/** What the served model needs of the n-gram model (ngram.ts's NgramSession is one). */
export interface NgramPart extends HistoryPart {
  /** Next-token probabilities (sums to 1). */
  distribution(): ArrayLike<number>;
  /** Which of the mixture's weights applies, given distribution()'s result. */
  bucket(dist: ArrayLike<number>): number;
}

/** What the served model needs of the copy model (copyModel.ts's CopySession is one). */
export interface CopyPart extends HistoryPart {
  predict(): CopyPrediction;
  /** The document being completed (a file system path, or the URI when it is not a file). */
  setDocument?(documentPath: string | null): void;
}

export interface ServedParts {
  gpt: WindowSession | null;
  /** The n-gram session over the document's history (its own: a ServedModel keeps it in step). */
  ngram: NgramPart | null;
  /** The copy session over the document's history (likewise its own). */
  copy: CopyPart | null;
  /** Required when the n-gram or copy model is mixed in. */
  weights: ServedWeights | null;
  vocabSize: number;
}

/** Taking back more than this many tokens costs more than replaying from the start. */
const MAX_REWIND = 200;

/**
 * A decoding session over the served distribution: prime it with the GPT's window and the
 * document's history, then append generated tokens; each call returns the next token's scores
 * (log-probabilities, or the GPT's logits in gpt mode: sampleToken normalises either).
 */
export class ServedModel {
  readonly mode: ServedModelMode;
  private readonly gpt: WindowSession | null;
  private readonly ngram: NgramPart | null;
  private readonly copy: CopyPart | null;
  private readonly weights: ServedWeights | null;
  private readonly out: Float32Array;
  /** The history the n-gram and copy sessions were last told (to replay only what changed). */
  private told: number[] | null = null;

  constructor(parts: ServedParts, cfg: ServedConfig) {
    this.mode = cfg.mode;
    const useCopy = cfg.copy !== false;
    if (cfg.mode !== 'counts' && parts.gpt === null) throw new Error(`the ${cfg.mode} model needs the GPT`);
    if (cfg.mode === 'counts' && parts.ngram === null) throw new Error('the counts model needs the n-gram model (the run\'s training data)');
    this.gpt = cfg.mode === 'counts' ? null : parts.gpt;
    this.ngram = cfg.mode === 'gpt' ? null : parts.ngram;
    this.copy = cfg.mode === 'gpt' || !useCopy ? null : parts.copy;
    if ((this.ngram !== null || this.copy !== null) && parts.weights === null) throw new Error('the n-gram and copy models need their fitted weights');
    this.weights = parts.weights;
    this.out = new Float32Array(parts.vocabSize);
  }

  /** Whether the n-gram or copy model is mixed in: then prime needs the document's history. */
  get followsHistory(): boolean {
    return this.ngram !== null || this.copy !== null;
  }

  /** Forgets the history the n-gram and copy models follow: the next prime replays it from the start (a cold request). */
  forgetHistory(): void {
    this.told = null;
    this.ngram?.reset();
    this.copy?.reset();
  }

  /** Window tokens the GPT's KV cache already holds. */
  commonPrefix(window: ArrayLike<number>): number {
    return this.gpt === null ? 0 : this.gpt.commonPrefix(window);
  }

  /** The document being completed (its file system path, or the URI), so the copy model leaves out its own training copy. */
  setDocument(documentPath: string | null): void {
    this.copy?.setDocument?.(documentPath);
  }

  /**
   * Scores for the token after `window` (the GPT's prompt) and `history` (the document so far,
   * for the n-gram and copy models: the same text as the window's prefix part, reaching further
   * back; ignored when they are not mixed in).
   */
  prime(window: ArrayLike<number>, history: readonly number[]): Floats {
    if (this.followsHistory) this.syncHistory(history);
    return this.score(this.gpt === null ? null : this.gpt.prime(window));
  }

  /** Appends a generated token to the window and the history; returns the next scores. */
  append(id: number): Floats {
    if (this.followsHistory) {
      this.ngram?.push(id);
      this.copy?.push(id);
      this.told?.push(id);
    }
    return this.score(this.gpt === null ? null : this.gpt.append(id));
  }

  /** The served mixture of the parts' predictions for the next token (the GPT's logits given). */
  private score(logits: Floats | null): Floats {
    const w = this.weights;
    if (this.ngram === null && this.copy === null) return logits!;
    const out = this.out;
    if (this.ngram !== null) {
      const p = this.ngram.distribution();
      if (logits !== null) mixLogits(logits, p, w!.mixture.weights[this.ngram.bucket(p)] ?? 0.5, out);
      else for (let v = 0; v < out.length; v++) out[v] = Math.log(p[v]!);
    } else logSoftmax(logits!, out);
    if (this.copy !== null) {
      const pred = this.copy.predict();
      const mu = this.mode === 'counts' ? w!.copyOverNgram : w!.copy;
      mixCopy(out, pred, mu.weights[copyBucket(pred.length)] ?? 0);
    }
    return out;
  }

  /**
   * Makes the n-gram and copy sessions' history exactly `history`: like the GPT's KV cache, a
   * request while typing shares all but its last few tokens with the previous one (whose
   * generated tokens are taken back), so they replay a handful of tokens, not the whole file.
   */
  private syncHistory(history: readonly number[]): void {
    const told = this.told;
    let keep = 0;
    if (told !== null) {
      const max = Math.min(told.length, history.length);
      while (keep < max && told[keep] === history[keep]) keep++;
    }
    const parts: HistoryPart[] = [];
    if (this.ngram !== null) parts.push(this.ngram);
    if (this.copy !== null) parts.push(this.copy);
    for (const part of parts) {
      let replayFrom = 0;
      if (told !== null && keep > 0 && told.length - keep <= MAX_REWIND) {
        try {
          for (let i = told.length; i > keep; i--) part.pop();
          replayFrom = keep;
        } catch {
          replayFrom = 0;
        }
      }
      if (replayFrom === 0) part.reset();
      for (let i = replayFrom; i < history.length; i++) part.push(history[i]!);
    }
    this.told = history.slice();
  }
}

/** ln softmax(scores) into `out`. */
export function logSoftmax<T extends Float32Array | Float64Array>(scores: ArrayLike<number>, out: T): T {
  let max = -Infinity;
  for (let v = 0; v < scores.length; v++) if (scores[v]! > max) max = scores[v]!;
  let z = 0;
  for (let v = 0; v < scores.length; v++) z += Math.exp(scores[v]! - max);
  const lz = max + Math.log(z);
  for (let v = 0; v < scores.length; v++) out[v] = scores[v]! - lz;
  return out;
}
