// What the served model mixes into the GPT (ml/mixture.ts), all built from the run's own training
// tokens (data/train.bin): a Kneser-Ney model with a file cache, and the copy model's index
// (ml/copyModel.ts). Their weights — the GPT's share λ per n-gram bucket, then the copy model's
// share μ per match length — are fitted on the run's held-out tokens (data/val.bin). Built when a
// checkpoint is loaded for serving and by `eval`, from the same code, so `eval` measures what the
// editor serves.
//
// Cost: the n-gram model trains in about a second per million tokens and is kept for the next
// checkpoint of the same run (train.bin does not change during a run); fitting λ runs the new
// GPT over at most FIT_TOKENS held-out tokens, yielding to the event loop between batches so the
// model being replaced keeps answering completions meanwhile.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { BpeTokenizer } from '../ml/bpe';
import type { Gpt } from '../ml/gpt';
import { copyTokenScores, fitCopyWeights, fitMixtureWeights, gptTokenLosses, MixtureWeights, mixtureBuckets, ngramTokenScores, splitDocuments } from '../ml/mixture';
import { COPY_BUCKETS, CopyCorpus, CopySession } from '../ml/copyModel';
import { CacheParams, DEFAULT_CACHE, DEFAULT_NGRAM_ORDER, KneserNey, NgramSession, tuneCache } from '../ml/ngram';
import { tokensFromBytes } from '../ml/dataset';

export interface NgramCompanion {
  kn: KneserNey;
  /** The file cache's weight and smoothing, tuned on the last files of train.bin. */
  cache: CacheParams;
  mixture: MixtureWeights;
  /** The training tokens, indexed for the copy model. */
  corpus: CopyCorpus;
  /** The copy model's share per match-length bucket (0 for "no match"). */
  copy: MixtureWeights;
  /** Tokens the n-gram model was counted from. */
  trainTokens: number;
}

/** Held-out tokens the mixture weights are fitted on, at most. */
export const FIT_TOKENS = 16_384;
/** Slice of train.bin for tuning the cache: its last files, at most this many tokens. */
const TUNE_TOKENS = 200_000;
/**
 * Training tokens the n-gram model counts at most. Counting needs ~200 bytes per token at its
 * peak, so 4M tokens (12–15 MB of code, far beyond the few-MB projects this is for) stay under
 * ~1 GB; a larger train.bin contributes whole files spread evenly across it.
 */
export const MAX_NGRAM_TOKENS = 4_000_000;

/** At most `max` tokens of whole files (eot-terminated) taken evenly across `tokens`; all of them when they fit. */
export function capTokens(tokens: Uint16Array, eot: number, max = MAX_NGRAM_TOKENS): Uint16Array {
  if (tokens.length <= max) return tokens;
  const ends: number[] = [];
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === eot) ends.push(i + 1);
  if (ends[ends.length - 1] !== tokens.length) ends.push(tokens.length);
  const keepShare = max / tokens.length;
  const out = new Uint16Array(max);
  let n = 0, start = 0, credit = 0;
  for (const end of ends) {
    credit += (end - start) * keepShare;
    if (credit >= end - start && n + (end - start) <= max) {
      out.set(tokens.subarray(start, end), n);
      n += end - start;
      credit -= end - start;
    }
    start = end;
  }
  return out.subarray(0, n);
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(() => true, () => false);
}

/** The run directory of a checkpoint directory: it, or the run above a checkpoints/step-N dir. */
export async function findRunDir(...candidates: string[]): Promise<string | null> {
  for (const arg of candidates) {
    for (const d of [path.resolve(arg), path.resolve(arg, '..', '..')]) {
      if (await exists(path.join(d, 'data', 'meta.json'))) return d;
    }
  }
  return null;
}

/** Splits train.bin at a file boundary near the end: [train part, held-out part for tuning]. */
function tuningSplit(train: Uint16Array, eot: number): [Uint16Array, Uint16Array] {
  const want = Math.min(TUNE_TOKENS, Math.floor(train.length * 0.05));
  let cut = train.length - want;
  while (cut > 0 && train[cut - 1] !== eot) cut--;
  if (cut <= 0 || train.length - cut < 100) return [train, new Uint16Array(0)];
  return [train.subarray(0, cut), train.subarray(cut)];
}

/**
 * The n-gram model over `tokens` with its cache tuned on held-out files: the cache weight is
 * chosen on train.bin's last files with a model counted from the files before them (on its own
 * training data the n-gram part looks better than it is and the cache would be under-weighted).
 */
export function trainNgram(allTokens: Uint16Array, vocabSize: number, eotId: number, order = DEFAULT_NGRAM_ORDER): { kn: KneserNey; cache: CacheParams } {
  const tokens = capTokens(allTokens, eotId);
  const [fitPart, tunePart] = tuningSplit(tokens, eotId);
  const cache = tunePart.length > 0 ? tuneCache(KneserNey.train(fitPart, { order, vocabSize, eotId }), tunePart).params : DEFAULT_CACHE;
  return { kn: KneserNey.train(tokens, { order, vocabSize, eotId }), cache };
}

/**
 * Held-out documents to fit on, about `limit` tokens in all: the start of each file (at most a
 * sixteenth of the budget per file, so one long file does not decide), files in order.
 */
export function fitDocuments(tokens: ArrayLike<number>, eot: number, limit = FIT_TOKENS): number[][] {
  const perFile = Math.max(256, Math.floor(limit / 16));
  const out: number[][] = [];
  let n = 0;
  for (const d of splitDocuments(tokens, eot)) {
    if (n >= limit) break;
    const keep = Math.min(perFile, limit - n);
    const doc = d.length - 1 > keep ? d.slice(0, keep + 1) : d;
    out.push(doc);
    n += doc.length - 1;
  }
  return out;
}

/** Per held-out token: the GPT's and the n-gram's probabilities and bucket, the copy model's probability and bucket. */
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

/** Fits λ (GPT vs n-gram, per n-gram bucket), then μ (copy vs that mixture, per match length). */
export function fitWeights(s: TokenScores, order: number): { mixture: MixtureWeights; copy: MixtureWeights } {
  const mixture = fitMixtureWeights(s.pGpt, s.pNgram, s.bucket, mixtureBuckets(order));
  const pMix = s.pGpt.map((g, i) => {
    const lam = mixture.weights[s.bucket[i]!]!;
    return lam * g + (1 - lam) * s.pNgram[i]!;
  });
  return { mixture, copy: fitCopyWeights(s.pCopy, pMix, s.copyBucket, COPY_BUCKETS) };
}

/** Scores held-out documents for fitting, one at a time, yielding between GPT batches. */
export async function scoreForFit(model: Gpt, kn: KneserNey, cache: CacheParams, corpus: CopyCorpus, docs: number[][]): Promise<TokenScores> {
  const out = emptyScores();
  const session = new NgramSession(kn, cache);
  const copy = new CopySession(corpus, kn.eotId);
  for (const doc of docs) {
    appendScores(out, gptTokenLosses(model, [doc])[0]!, ngramTokenScores(session, [doc])[0]!, copyTokenScores(copy, [doc])[0]!);
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

let lastNgram: { key: string; kn: KneserNey; cache: CacheParams; corpus: CopyCorpus } | null = null;

/**
 * The companion for a checkpoint served from `dir`, or the reason there is none (an imported
 * model without the run's data, a tokenizer that no longer matches train.bin, no held-out files).
 */
export async function loadNgramCompanion(dir: string, model: Gpt, tokenizer: BpeTokenizer): Promise<NgramCompanion | { skipped: string }> {
  const runDir = await findRunDir(dir);
  if (runDir === null) return { skipped: 'no training data next to the checkpoint (imported model?)' };
  const data = path.join(runDir, 'data');
  // train.bin is in the tokenizer of data/; a checkpoint from before a tokenizer change is not.
  const [ours, theirs] = await Promise.all([
    fs.readFile(path.join(dir, 'tokenizer.json'), 'utf8').catch(() => null),
    fs.readFile(path.join(data, 'tokenizer.json'), 'utf8').catch(() => null),
  ]);
  if (ours === null || theirs === null || ours !== theirs) return { skipped: 'the training data was re-tokenized since this checkpoint' };
  const trainPath = path.join(data, 'train.bin');
  const st = await fs.stat(trainPath).catch(() => null);
  if (st === null || st.size < 2) return { skipped: 'no train.bin' };
  const key = `${trainPath}|${st.size}|${st.mtimeMs}|${tokenizer.vocabSize}`;
  if (lastNgram?.key !== key) {
    lastNgram = null; // let the old model go before building the new one
    const tokens = tokensFromBytes(await fs.readFile(trainPath));
    const corpus = new CopyCorpus(tokens, tokenizer.eotId);
    const meta = JSON.parse(await fs.readFile(path.join(data, 'meta.json'), 'utf8').catch(() => '{}')) as { train_paths?: unknown };
    if (Array.isArray(meta.train_paths) && meta.train_paths.every((p) => typeof p === 'string')) corpus.setFilePaths(meta.train_paths as string[]);
    lastNgram = { key, ...trainNgram(tokens, tokenizer.vocabSize, tokenizer.eotId), corpus };
  }
  const { kn, cache, corpus } = lastNgram;
  const val = await fs.readFile(path.join(data, 'val.bin')).catch(() => null);
  const docs = val === null ? [] : fitDocuments(tokensFromBytes(val), tokenizer.eotId);
  if (docs.length === 0) return { skipped: 'no held-out tokens to fit the mixture on' };
  const { mixture, copy } = fitWeights(await scoreForFit(model, kn, cache, corpus, docs), kn.order);
  return { kn, cache, mixture, corpus, copy, trainTokens: kn.stats.tokens };
}
