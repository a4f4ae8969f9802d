// Fitting the served mixture's weights (ml/servedModel.ts applies them), and the per-token scores
// the fit reads. The GPT and the n-gram model (Kneser-Ney + file cache, ngram.ts) are mixed as
//   p(w) = λ_b · p_gpt(w) + (1 − λ_b) · p_ngram(w)
// where the GPT's share λ_b depends on a bucket b of the n-gram's situation: how many tokens of
// the current history it saw in training (0 … order−1; its "matched depth") and how sure it is
// (its most probable next token's probability, in CONFIDENCE_LEVELS). This is Jelinek & Mercer's
// bucketed interpolation (1980), with buckets by the evidence behind the n-gram's estimate: where
// it has seen the last three tokens and they were always followed by the same token it deserves a
// large share; where it backs off to unigrams, or is torn, the network should decide.
//
// Why mix at all: on a single project the n-gram model with a cache is strong (Hindle et al. 2012;
// Karampatsis et al. 2020 — and our docs/experiments.md), and it is strong exactly where a small
// network trained for minutes is weak: exact recall of rare identifiers and of the file's own
// tokens. The two make different mistakes, so the mixture beats both (quality.md measured it).
//
// λ is fitted by EM on held-out tokens (files neither model trained on): each token's posterior
// "the GPT produced it", r = λp_g / (λp_g + (1−λ)p_n), averaged per bucket, is the next λ_b. EM
// never increases the held-out cross-entropy, and converges in a few dozen iterations.

import type { Gpt } from './gpt';
import { MIXTURE_FIT } from './config';
import type { NgramSession } from './ngram';
import { copyBucket, copyProbability, CopySession } from './copyModel';

/** The GPT's share per bucket, with what the fit saw (for logs, `info` and tests). */
export interface MixtureWeights {
  /** λ_b for b = matched depth 0 … order−1. */
  weights: number[];
  /** Held-out tokens per bucket. */
  counts: number[];
  /** Mean cross-entropy (nats/token) on the held-out tokens: GPT, n-gram, mixture. */
  nats: { gpt: number; ngram: number; mixture: number };
}

/** A bucket without enough tokens to estimate its own λ uses the pooled λ; λ stays inside [floor, 1 − floor]. */
const { minBucketTokens: MIN_BUCKET_TOKENS, iterations: EM_ITERATIONS, weightFloor: LAMBDA_FLOOR } = MIXTURE_FIT;

/**
 * Fits the bucketed λ by EM. pGpt[i], pNgram[i]: the two models' probabilities of held-out token
 * i; bucket[i] ∈ [0, nBuckets).
 */
export function fitMixtureWeights(pGpt: ArrayLike<number>, pNgram: ArrayLike<number>, bucket: ArrayLike<number>, nBuckets: number): MixtureWeights {
  const N = pGpt.length;
  const emStep = (lam: number, idx: (i: number) => boolean): number => {
    let r = 0, n = 0;
    for (let i = 0; i < N; i++) {
      if (!idx(i)) continue;
      const g = lam * pGpt[i]!, m = (1 - lam) * pNgram[i]!;
      r += g + m > 0 ? g / (g + m) : lam;
      n++;
    }
    return n > 0 ? r / n : lam;
  };
  const clamp = (x: number): number => Math.min(1 - LAMBDA_FLOOR, Math.max(LAMBDA_FLOOR, x));
  let pooled = 0.5;
  for (let it = 0; it < EM_ITERATIONS; it++) pooled = clamp(emStep(pooled, () => true));
  const counts = new Array<number>(nBuckets).fill(0);
  for (let i = 0; i < N; i++) counts[bucket[i]!]!++;
  const weights = counts.map((c, b) => {
    if (c < MIN_BUCKET_TOKENS) return pooled;
    let lam = pooled;
    for (let it = 0; it < EM_ITERATIONS; it++) lam = clamp(emStep(lam, (i) => bucket[i] === b));
    return lam;
  });
  let g = 0, m = 0, x = 0;
  for (let i = 0; i < N; i++) {
    const lam = weights[bucket[i]!]!;
    // Floored: a model that gives a held-out token probability 0 (the copy model does) scores a
    // large finite loss, not Infinity (which JSON cannot carry).
    g -= Math.log(Math.max(pGpt[i]!, 1e-300));
    m -= Math.log(Math.max(pNgram[i]!, 1e-300));
    x -= Math.log(lam * pGpt[i]! + (1 - lam) * pNgram[i]!);
  }
  const n = Math.max(1, N);
  return { weights, counts, nats: { gpt: g / n, ngram: m / n, mixture: x / n } };
}

/**
 * ln(weight·softmax(logits) + (1 − weight)·pNgram) into `out` (a network's logits, or any
 * log-probabilities, mixed with an n-gram distribution of probabilities).
 */
export function mixLogits(logits: ArrayLike<number>, pNgram: ArrayLike<number>, weight: number, out: Float32Array | Float64Array): Float32Array | Float64Array {
  const V = out.length;
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (logits[v]! > max) max = logits[v]!;
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[v]! - max);
  const a = weight / sum, b = 1 - weight;
  for (let v = 0; v < V; v++) out[v] = Math.log(a * Math.exp(logits[v]! - max) + b * pNgram[v]!);
  return out;
}

/**
 * The GPT's NLL (nats) of every token after the first of each sequence ([eot, …file, eot]):
 * out[d][t] = −ln p(seq[t+1] | seq[..t]). Sliding windows of the context length P with stride
 * P/2, batched 8 at a time: every token after a file's first window is predicted from at least
 * P/2 tokens of context (never from a window boundary right before it).
 */
export function gptTokenLosses(model: Gpt, docs: number[][], onProgress: (f: number) => void = () => undefined): Float64Array[] {
  const P = model.cfg.contextLength;
  const stride = Math.max(1, Math.floor(P / 2));
  const jobs: { doc: number; begin: number; from: number }[] = [];
  const out = docs.map((d) => new Float64Array(Math.max(0, d.length - 1)));
  docs.forEach((seq, doc) => {
    // Targets are seq[1..n); a window at `begin` predicts seq[begin+1 .. begin+P]. It scores
    // those after `from` (the previous window's end).
    let scoredTo = 0;
    for (let begin = 0; scoredTo < seq.length - 1; begin += stride) {
      jobs.push({ doc, begin, from: scoredTo });
      scoredTo = Math.min(seq.length - 1, begin + P);
    }
  });
  const B = 8;
  const ids = new Int32Array(B * P);
  const targets = new Int32Array(B * P);
  for (let j0 = 0; j0 < jobs.length; j0 += B) {
    ids.fill(0);
    targets.fill(-1);
    const batch = jobs.slice(j0, j0 + B);
    batch.forEach((job, b) => {
      const seq = docs[job.doc]!;
      for (let t = 0; t < P && job.begin + t + 1 < seq.length; t++) {
        ids[b * P + t] = seq[job.begin + t]!;
        // Target index k = begin + t + 1 (1-based in seq); score it if not done by an earlier window.
        if (job.begin + t >= job.from) targets[b * P + t] = seq[job.begin + t + 1]!;
      }
    });
    model.evaluate(ids, targets, B, P);
    const losses = model.lossesView();
    batch.forEach((job, b) => {
      const nll = out[job.doc]!;
      for (let t = 0; t < P; t++) if (targets[b * P + t]! >= 0) nll[job.begin + t] = losses[b * P + t]!;
    });
    onProgress(Math.min(1, (j0 + B) / jobs.length));
  }
  return out;
}

/**
 * The n-gram session's NLL of every token after the first of each sequence, and the mixture
 * bucket it was predicted in (the same layout as gptTokenLosses). The session is reset per file.
 */
export function ngramTokenScores(session: NgramSession, docs: number[][]): { nll: Float64Array; bucket: Uint8Array }[] {
  return docs.map((seq) => {
    session.reset();
    const n = Math.max(0, seq.length - 1);
    const nll = new Float64Array(n);
    const bucket = new Uint8Array(n);
    if (seq.length > 0) session.push(seq[0]!);
    for (let t = 1; t < seq.length; t++) {
      bucket[t - 1] = session.bucket(session.distribution());
      nll[t - 1] = -session.logProb(seq[t]!);
      session.push(seq[t]!);
    }
    return { nll, bucket };
  });
}

/**
 * The copy model's weight per match-length bucket (copyModel.ts), fitted by the same EM against
 * the GPT + n-gram mixture: pCopy[i] and pMix[i] are the two probabilities of held-out token i.
 * Tokens without a copy prediction (bucket 0) are left out, and bucket 0's weight is 0: there the
 * served distribution is the GPT + n-gram mixture unchanged.
 */
export function fitCopyWeights(pCopy: ArrayLike<number>, pMix: ArrayLike<number>, bucket: ArrayLike<number>, nBuckets: number): MixtureWeights {
  const pc: number[] = [], pm: number[] = [], bk: number[] = [];
  for (let i = 0; i < pCopy.length; i++) {
    if (bucket[i] === 0) continue;
    pc.push(pCopy[i]!); pm.push(pMix[i]!); bk.push(bucket[i]!);
  }
  const fit = fitMixtureWeights(pc, pm, bk, nBuckets);
  // Too few held-out tokens with a match to say how far to trust it: leave the copy model out.
  if (pc.length < MIN_BUCKET_TOKENS) fit.weights.fill(0);
  fit.weights[0] = 0;
  fit.counts[0] = pCopy.length - pc.length;
  return fit;
}

/**
 * The copy model's probability of every token after the first of each sequence, and its
 * match-length bucket. paths[d], when given, names document d, so the copy model leaves out its
 * own training copy (as in the editor).
 */
export function copyTokenScores(session: CopySession, docs: number[][], paths?: readonly string[]): { p: Float64Array; bucket: Uint8Array }[] {
  return docs.map((seq, d) => {
    session.reset();
    session.setDocument(paths?.[d] ?? null);
    const n = Math.max(0, seq.length - 1);
    const p = new Float64Array(n);
    const bucket = new Uint8Array(n);
    if (seq.length > 0) session.push(seq[0]!);
    for (let t = 1; t < seq.length; t++) {
      const pred = session.predict();
      bucket[t - 1] = copyBucket(pred.length);
      p[t - 1] = copyProbability(pred, seq[t]!);
      session.push(seq[t]!);
    }
    return { p, bucket };
  });
}

/** Splits a token stream (files joined by eot) into [eot, …file, eot] sequences. */
export function splitDocuments(tokens: ArrayLike<number>, eot: number): number[][] {
  const docs: number[][] = [];
  let cur: number[] = [eot];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === eot) {
      if (cur.length > 1) docs.push([...cur, eot]);
      cur = [eot];
    } else cur.push(t);
  }
  if (cur.length > 1) docs.push([...cur, eot]);
  return docs;
}
