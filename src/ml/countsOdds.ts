// The counts' odds for the mixture-aware training loss: train the GPT for the mixture it is served
// in, not alone. (The loss's gradient is applied in gpt.ts, with layers.mixtureGradientWeight.)
//
// The editor serves p = μ_c·p_copy + (1 − μ_c)·(λ_b·p_gpt + (1 − λ_b)·p_ngram) (servedModel.ts).
// For one target token y that is linear in the GPT's probability:
//   p(y) = w·p_gpt(y) + R        w = (1 − μ)·λ,   R = (1 − μ)·(1 − λ)·p_ngram(y) + μ·p_copy(y)
// so the served model's loss −ln p(y) = −ln w − ln(p_gpt(y) + a), with a = R / w the counts'
// "odds" against the GPT on this token. Its gradient with respect to the GPT's logits z is
//   r · (softmax(z) − onehot(y)),    r = p_gpt(y) / (p_gpt(y) + a) = 1 / (1 + a·e^{CE})
// — the plain cross-entropy gradient times the posterior that the GPT, not the counts, produced
// y (the same r as the EM fit of mixture.ts). Where the n-gram or copy model already predicts y
// well, r ≈ 0 and the network spends nothing there; where they miss, r ≈ 1 and it learns as
// before. One scalar per training token (a) and one row scale in the head's backward: the
// network's capacity goes to what counting cannot do (the idea of Li et al. 2022, "Residual
// learning of neural text generation with n-gram language models", for the linear mixture we
// serve rather than their product of experts, which would need the counts' whole distribution
// at every training position).
//
// The counts a training token gets must be those a file the models never saw would get — as in
// the editor, where the file being written is not in train.bin — or the n-gram model "predicts"
// every training token from its own counts and r is ≈ 0 everywhere. So the n-gram model is
// cross-fitted: the files are dealt into `folds` groups and each group is scored by a model
// counted from the others; the copy model searches all of train.bin but the file's own span
// (leave-one-file-out), plus the file's own past, as served. The shares are fixed for the run:
// λ is a constant (COUNTS_LOSS.gptShare: the served fit's weights lie around 0.3–0.6 where the
// n-gram is unsure), μ is fitted by EM on the cross-fitted scores themselves (copy against the
// n-gram). The loss the run trains on blends this with the GPT's own cross-entropy
// (TrainConfig.mixturePlainShare): the pure mixture loss lost in docs/experiments.md, Part 3.

import { copyBucket, CopyCorpus, copyProbability, COPY_BUCKETS, CopySession } from './copyModel';
import { fitCopyWeights } from './mixture';
import { CacheParams, capTokens, DEFAULT_CACHE, KneserNey, NgramSession, tuneCache } from './ngram';
import { COUNTS_LOSS, SERVING } from './config';

export interface CountsOddsOptions {
  vocabSize: number;
  eotId: number;
  /** The n-gram model's order (the served one's). */
  order: number;
  /** Groups of files for the n-gram model's cross-fitting (≥ 2). */
  folds?: number;
  /** λ, the GPT's share against the n-gram model in the training loss. */
  gptShare?: number;
  onProgress?: (fraction: number) => void;
}

export interface CountsOdds {
  /** odds[i]: a for predicting tokens[i] from tokens[..i) (see the file comment); ≥ 0. */
  odds: Float32Array;
  /** What the counts alone achieve on the training tokens (cross-fitted), for the run's log. */
  stats: { tokens: number; files: number; ngramNats: number; countsNats: number; seconds: number };
}

/** [start, end) of each file of a stream of files joined by eot: end is its eot's position (or the stream's end). */
export function fileSpans(tokens: ArrayLike<number>, eot: number): [number, number][] {
  const spans: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === eot) {
      spans.push([start, i]);
      start = i + 1;
    }
  }
  if (start < tokens.length) spans.push([start, tokens.length]);
  return spans;
}

/**
 * The counts' odds a for every training token (cross-fitted, see the file comment). Every
 * position of `tokens` is the target of one file (its tokens and its closing eot); a file's
 * first token is predicted after an eot, as at the start of a file in the editor.
 * Work: `folds` n-gram models of (folds−1)/folds of the tokens, one n-gram and one copy query
 * per token — seconds per million tokens.
 */
export function countsOdds(tokens: Uint16Array, opts: CountsOddsOptions): CountsOdds {
  const t0 = performance.now();
  const N = tokens.length;
  const { eotId, vocabSize, order } = opts;
  const folds = Math.max(2, opts.folds ?? COUNTS_LOSS.folds);
  const lam = opts.gptShare ?? COUNTS_LOSS.gptShare;
  const spans = fileSpans(tokens, eotId);
  const fileFold = (f: number): number => f % folds;
  const pNgram = new Float32Array(N);
  const pCopy = new Float32Array(N);
  const bucket = new Uint8Array(N);
  const progress = opts.onProgress ?? (() => undefined);
  let done = 0;
  const step = (): void => {
    done++;
    if ((done & 0xffff) === 0) progress(Math.min(1, done / (2 * N)));
  };

  // Copy model: the whole stream indexed once; each file leaves out its own span.
  const corpus = new CopyCorpus(tokens, eotId);
  const copy = new CopySession(corpus, eotId);
  for (const [start, end] of spans) {
    copy.reset();
    copy.excludeSpan([start, Math.min(N, end + 1)]);
    copy.push(eotId);
    for (let i = start; i <= end && i < N; i++) {
      const pred = copy.predict();
      pCopy[i] = copyProbability(pred, tokens[i]!);
      bucket[i] = copyBucket(pred.length);
      copy.push(tokens[i]!);
      step();
    }
  }

  // n-gram model: per fold, counted from the other folds' files.
  let cache: CacheParams = DEFAULT_CACHE;
  for (let k = 0; k < folds; k++) {
    const inFold = spans.filter((_, f) => fileFold(f) === k);
    if (inFold.length === 0) continue;
    let outLen = 0;
    spans.forEach(([s, e], f) => { if (fileFold(f) !== k) outLen += Math.min(N, e + 1) - s; });
    const rest = new Uint16Array(outLen);
    let o = 0;
    spans.forEach(([s, e], f) => {
      if (fileFold(f) === k) return;
      rest.set(tokens.subarray(s, Math.min(N, e + 1)), o);
      o += Math.min(N, e + 1) - s;
    });
    // Counted from at most as many tokens as the served n-gram model (its memory bound).
    const counted = capTokens(rest, eotId, SERVING.maxNgramTokens);
    const kn = KneserNey.train(counted.length > 0 ? counted : new Uint16Array([eotId]), { order, vocabSize, eotId });
    if (k === 0) {
      // The cache weight, tuned once on the first fold's files (held out from this model).
      const held: number[] = [];
      for (const [s, e] of inFold) {
        if (held.length > COUNTS_LOSS.cacheTuneTokens) break;
        for (let i = s; i <= e && i < N; i++) held.push(tokens[i]!);
      }
      cache = tuneCache(kn, held).params;
    }
    const session = new NgramSession(kn, cache);
    for (const [s, e] of inFold) {
      session.reset();
      session.push(eotId);
      for (let i = s; i <= e && i < N; i++) {
        pNgram[i] = session.prob(tokens[i]!);
        session.push(tokens[i]!);
        step();
      }
    }
  }

  // μ: the copy model's share against the n-gram model, fitted on these scores.
  const mu = fitCopyWeights(pCopy, pNgram, bucket, COPY_BUCKETS).weights;
  const odds = new Float32Array(N);
  let ngramNats = 0, countsNats = 0;
  for (let i = 0; i < N; i++) {
    const m = mu[bucket[i]!] ?? 0;
    const pn = Math.max(pNgram[i]!, 1e-12);
    const counts = m * pCopy[i]! + (1 - m) * pn;
    odds[i] = ((1 - m) * (1 - lam) * pn + m * pCopy[i]!) / ((1 - m) * lam);
    ngramNats -= Math.log(pn);
    countsNats -= Math.log(counts);
  }
  progress(1);
  return {
    odds,
    stats: {
      tokens: N, files: spans.length, ngramNats: ngramNats / Math.max(1, N), countsNats: countsNats / Math.max(1, N),
      seconds: (performance.now() - t0) / 1000,
    },
  };
}
