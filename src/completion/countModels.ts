// The count models a run serves next to its GPT, built from the run's own training tokens
// (data/train.bin): the Kneser-Ney n-gram model with a file cache, and the copy model's index
// (ml/copyModel.ts); and the served model's weights (ml/servedModel.ts) fitted for a GPT on the
// run's held-out tokens (data/val.bin). Built when a checkpoint is loaded for serving and by
// `eval`, from the same code, so `eval` measures what the editor serves.
//
// Cost: the n-gram model trains in about a second per million tokens and is kept for the next
// checkpoint of the same run (train.bin does not change during a run); fitting the weights runs
// the new GPT over at most SERVING.fitTokens held-out tokens, yielding to the event loop between
// files so the model being replaced keeps answering completions meanwhile.

import { promises as fs } from 'node:fs';
import type { BpeTokenizer } from '../ml/bpe';
import type { Gpt } from '../ml/gpt';
import { SERVING } from '../ml/config';
import { copyTokenScores, gptTokenLosses, ngramTokenScores, splitDocuments } from '../ml/mixture';
import { CopyCorpus, CopySession } from '../ml/copyModel';
import { CacheParams, capTokens, DEFAULT_CACHE, KneserNey, NgramSession, tuneCache } from '../ml/ngram';
import { appendScores, emptyScores, fitServedWeights, ServedWeights, TokenScores } from '../ml/servedModel';
import { tokensFromBytes } from '../ml/dataset';
import { findRunDir, readDatasetMeta, runPaths } from '../run/layout';
import { TOKENIZER_FILE } from '../run/layout';
import { readRegularFile, READ_LIMITS } from '../run/safeRead';
import * as path from 'node:path';

/** The n-gram and copy models of a run's training tokens. */
export interface CountModels {
  kn: KneserNey;
  /** The file cache's weight and smoothing, tuned on the last files of train.bin. */
  cache: CacheParams;
  /** The training tokens, indexed for the copy model. */
  corpus: CopyCorpus;
}

/** Splits train.bin at a file boundary near the end: [train part, held-out part for tuning]. */
function tuningSplit(train: Uint16Array, eot: number): [Uint16Array, Uint16Array] {
  const want = Math.min(SERVING.cacheTuneTokens, Math.floor(train.length * 0.05));
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
export function trainNgram(allTokens: Uint16Array, vocabSize: number, eotId: number, order: number = SERVING.ngramOrder): { kn: KneserNey; cache: CacheParams } {
  const tokens = capTokens(allTokens, eotId, SERVING.maxNgramTokens);
  const [fitPart, tunePart] = tuningSplit(tokens, eotId);
  const cache = tunePart.length > 0 ? tuneCache(KneserNey.train(fitPart, { order, vocabSize, eotId }), tunePart).params : DEFAULT_CACHE;
  return { kn: KneserNey.train(tokens, { order, vocabSize, eotId }), cache };
}

/** The count models of train.bin's tokens; trainPaths (meta.json) tell the copy model which span is which file. */
export function buildCountModels(tokens: Uint16Array, tokenizer: BpeTokenizer, trainPaths: readonly string[] | undefined, order: number = SERVING.ngramOrder): CountModels {
  const corpus = new CopyCorpus(tokens, tokenizer.eotId);
  if (trainPaths !== undefined) corpus.setFilePaths(trainPaths);
  return { ...trainNgram(tokens, tokenizer.vocabSize, tokenizer.eotId, order), corpus };
}

/**
 * Held-out documents to fit on, about `limit` tokens in all: the start of each file (at most a
 * sixteenth of the budget per file, so one long file does not decide), files in order.
 */
export function fitDocuments(tokens: ArrayLike<number>, eot: number, limit: number = SERVING.fitTokens): number[][] {
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

/** Scores held-out documents for fitting, one at a time, yielding between files. */
export async function scoreForFit(model: Gpt, counts: CountModels, docs: number[][]): Promise<TokenScores> {
  const out = emptyScores();
  const session = new NgramSession(counts.kn, counts.cache);
  const copy = new CopySession(counts.corpus, counts.kn.eotId);
  for (const doc of docs) {
    appendScores(out, gptTokenLosses(model, [doc])[0]!, ngramTokenScores(session, [doc])[0]!, copyTokenScores(copy, [doc])[0]!);
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

let lastCounts: { key: string; counts: CountModels } | null = null;

/**
 * The count models and the served weights for a checkpoint served from `dir`, or the reason there
 * are none (an imported model without the run's data, a tokenizer that no longer matches
 * train.bin, no held-out files).
 */
export async function loadCountModels(dir: string, model: Gpt, tokenizer: BpeTokenizer): Promise<{ counts: CountModels; weights: ServedWeights } | { skipped: string }> {
  const runDir = await findRunDir(dir);
  if (runDir === null) return { skipped: 'no training data next to the checkpoint (imported model?)' };
  const run = runPaths(runDir);
  // train.bin is in the tokenizer of data/; a checkpoint from before a tokenizer change is not.
  const [ours, theirs] = await Promise.all([
    readRegularFile(path.join(dir, TOKENIZER_FILE), READ_LIMITS.tokenizer, { allowSymlinkWithin: dir }).then((b) => b.toString('utf8'), () => null),
    readRegularFile(run.dataTokenizer, READ_LIMITS.tokenizer, { allowSymlinkWithin: runDir }).then((b) => b.toString('utf8'), () => null),
  ]);
  if (ours === null || theirs === null || ours !== theirs) return { skipped: 'the training data was re-tokenized since this checkpoint' };
  const st = await fs.stat(run.trainBin).catch(() => null);
  if (st === null || st.size < 2) return { skipped: 'no train.bin' };
  const key = `${run.trainBin}|${st.size}|${st.mtimeMs}|${tokenizer.vocabSize}`;
  if (lastCounts?.key !== key) {
    lastCounts = null; // let the old models go before building the new ones
    const tokens = tokensFromBytes(await readRegularFile(run.trainBin, READ_LIMITS.datasetBin, { allowSymlinkWithin: runDir }));
    const meta = await readDatasetMeta(runDir);
    lastCounts = { key, counts: buildCountModels(tokens, tokenizer, meta?.train_paths) };
  }
  const counts = lastCounts.counts;
  const val = await readRegularFile(run.valBin, READ_LIMITS.datasetBin, { allowSymlinkWithin: runDir }).catch(() => null);
  const docs = val === null ? [] : fitDocuments(tokensFromBytes(val), tokenizer.eotId);
  if (docs.length === 0) return { skipped: 'no held-out tokens to fit the mixture on' };
  return { counts, weights: fitServedWeights(await scoreForFit(model, counts, docs), counts.kn.order) };
}
