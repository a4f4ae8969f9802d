// Completions from the served model: the text before the cursor → tokens → a stable context window
// → KV-cached decoding (reusing the cache of the unchanged prefix) → stop rules → a suggestion, or
// nothing when the model is unsure. Independent of LSP: the language server adapts requests to it.
// When the model was trained with fill-in-the-middle and there is code after the cursor, the
// prompt also carries that code (fimPrompt: <|fim_prefix|> <|fim_suffix|> after <|fim_middle|>
// before, in the SPM order it was trained with), so it constrains the suggestion; the model ends
// the middle with <|endoftext|>. Token healing works the same: the prompt still ends with the
// text before the cursor.
// When the model comes with an n-gram companion (ngramCompanion.ts), every next-token
// distribution is the mixture λ_b·p_gpt + (1−λ_b)·p_ngram (ml/mixture.ts); the n-gram part sees a
// longer stretch of the file than the GPT's window (its cache is the file's own vocabulary).
// `workspace-lm eval` runs this same engine over held-out files, so its next-line metric measures
// exactly what users get (it also plugs in the n-gram baseline as a CompletionModel).

import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mixLogits } from '../ml/mixture';
import { copyBucket, CopyPrediction, mixCopy } from '../ml/copyModel';
import { contextWindow, sampleToken } from '../ml/sample';
import { Rng } from '../ml/rng';
import type { BpeTokenizer } from '../ml/bpe';
import type { Floats } from '../ml/layers';
import type { CompletionSettings } from '../shared/protocol';
import { checkStop, fitToLine } from './stopRules';

/** Next-token scores for a growing sequence: the GPT's KV-cached InferenceSession, or any stand-in. */
export interface DecodingSession {
  commonPrefix(ids: ArrayLike<number>): number;
  /** Makes the history exactly `ids`; returns logits (or log-probabilities) for the next token. */
  prime(ids: ArrayLike<number>): Floats;
  append(id: number): Floats;
}

/** What the engine needs of a model. A ServingModel is one; `eval` also builds n-gram and mixture ones. */
export interface CompletionModel {
  /** Identifies the weights for the caches (null for imported weights). */
  step: number | null;
  /** contextLength bounds the prompt window (prompt + new tokens). */
  model: { cfg: { contextLength: number } };
  tokenizer: BpeTokenizer;
  session: DecodingSession;
  /** Trained with fill-in-the-middle: use the FIM prompt when there is code after the cursor. */
  fim?: boolean;
  /** Its FIM token order (default 'spm'; see ml/dataset.ts). */
  fimFormat?: 'spm' | 'psm';
  /** An n-gram model to mix in: p = λ_b·p_model + (1−λ_b)·p_ngram, b = session.bucket(). */
  ngram?: { session: NgramMixPart; mixture: { weights: ArrayLike<number> } };
  /** A copy model to mix in after that (ml/copyModel.ts), weighted per match-length bucket. */
  copy?: { session: CopyMixPart; mixture: { weights: ArrayLike<number> } };
}

/** What the engine needs of the copy model (ml/copyModel.ts's CopySession is one). */
export interface CopyMixPart extends HistoryPart {
  predict(): CopyPrediction;
  /** The document being completed (a file system path, or the URI when it is not a file). */
  setDocument?(documentPath: string | null): void;
}

/** What the engine needs of the n-gram half of a mixture (ml/ngram.ts's NgramSession is one). */
export interface NgramMixPart extends HistoryPart {
  /** Next-token probabilities (sums to 1). */
  distribution(): ArrayLike<number>;
  /** Which of the mixture's weights applies, given distribution()'s result. */
  bucket(dist: ArrayLike<number>): number;
}

export interface CompletionRequest {
  /** Identifies the document for the typing-continuation cache. */
  uri: string;
  /** Whole document text and the cursor as an offset into it. */
  text: string;
  offset: number;
}

export interface CompletionResult {
  /** The text to insert at the cursor ('' = no suggestion). */
  text: string;
  /** Characters after the cursor (same line) that `text` replaces; 0 = a plain insertion. */
  replaceChars: number;
  /** Why there is or is not a suggestion (for logs, tests and the benchmark). */
  reason: 'ok' | 'cached' | 'continued' | 'no-model' | 'too-large' | 'binary' | 'cancelled' | 'low-confidence' | 'empty' | 'disabled';
  /** Tokens decoded for this request (0 when answered from a cache). */
  tokens: number;
  /** Prompt tokens that had to be computed (the rest came from the KV cache). */
  prefilled: number;
  meanLogProb?: number;
  /** With EngineOptions.trace: the exact work done, for benchmarks that replay it elsewhere. */
  trace?: { window: number[]; reused: number; generated: number[]; decodeSteps: number };
}

export interface EngineOptions {
  /** Answer from the previous suggestion when the user typed its next characters (default true). */
  reuseSuggestions?: boolean;
  /** Answer identical requests from the LRU cache (default true). */
  useCache?: boolean;
  trace?: boolean;
  /**
   * Hypotheses kept by beam search (default 1 = greedy). With more, the engine returns the most
   * probable whole completion it finds rather than the chain of most probable tokens.
   */
  beamWidth?: number;
}

/** Polled between tokens; when it returns true decoding stops (a newer request or LSP $/cancelRequest). */
export type IsCancelled = () => boolean;

/** Documents above this are not completed (generated data, dumps): no work at all. */
export const MAX_DOCUMENT_CHARS = 1_000_000;
/** The file system path of a file: URI (so the copy model can recognise the document's training copy), else the URI. */
function documentPath(uri: string): string {
  if (!uri.startsWith('file:')) return uri;
  try {
    return fileURLToPath(uri);
  } catch {
    return uri;
  }
}

/** A model that follows the document token by token, and can take back its last tokens. */
export interface HistoryPart {
  reset(): void;
  push(id: number): void;
  /** Undoes the last push (throws when it cannot: then the engine resets and replays). */
  pop(): void;
}

/** The tokens each part was last told, so the next request only replays what changed. */
const toldHistory = new WeakMap<HistoryPart, number[]>();
/** Taking back more than this many tokens costs more than replaying from the start. */
const MAX_REWIND = 200;

/**
 * Makes each part's history exactly `history`: like the GPT's KV cache, a request while typing
 * shares all but its last few tokens with the previous one (whose generated tokens are taken
 * back too), so the n-gram and copy models replay a handful of tokens, not the whole file.
 */
function syncHistory(parts: (HistoryPart | undefined)[], history: number[]): void {
  for (const part of parts) {
    if (part === undefined) continue;
    const told = toldHistory.get(part);
    let keep = 0;
    if (told !== undefined) {
      const max = Math.min(told.length, history.length);
      while (keep < max && told[keep] === history[keep]) keep++;
    }
    let replayFrom = 0;
    if (told !== undefined && keep > 0 && told.length - keep <= MAX_REWIND) {
      try {
        for (let i = told.length; i > keep; i--) part.pop();
        replayFrom = keep;
      } catch {
        replayFrom = 0;
      }
    }
    if (replayFrom === 0) part.reset();
    for (let i = replayFrom; i < history.length; i++) part.push(history[i]!);
    toldHistory.set(part, history.slice());
  }
}

function pushHistory(parts: (HistoryPart | undefined)[], id: number): void {
  for (const part of parts) {
    if (part === undefined) continue;
    part.push(id);
    toldHistory.get(part)?.push(id);
  }
}

/** Characters before the cursor that are tokenized: plenty for any context window. */
const TAIL_CHARS_PER_TOKEN = 12;
/** Characters before the cursor the n-gram half of a mixture sees (its cache: ~4K tokens of the file). */
const NGRAM_TAIL_CHARS = 16_384;
/** Block granularity of the tail's start, so its tokenization is stable while typing. */
const TAIL_ALIGN = 1024;
const CACHE_ENTRIES = 64;
/** Yield to the event loop every this many tokens so cancellation messages get through. */
const YIELD_EVERY = 4;

export class CompletionEngine {
  private readonly cache = new Map<string, string>();
  /** The last suggestion per document: typing its next characters keeps it without recomputing. */
  private readonly lastByUri = new Map<string, { prefix: string; suggestion: string; step: number | null }>();
  private readonly rng = new Rng(0);

  constructor(private readonly getModel: () => CompletionModel | null, private settings: CompletionSettings, private readonly options: EngineOptions = {}) {}

  updateSettings(s: CompletionSettings): void {
    this.settings = s;
    this.cache.clear();
    this.lastByUri.clear();
  }

  forget(uri: string): void {
    this.lastByUri.delete(uri);
  }

  async complete(req: CompletionRequest, isCancelled: IsCancelled): Promise<CompletionResult> {
    const none = (reason: CompletionResult['reason']): CompletionResult => ({ text: '', replaceChars: 0, reason, tokens: 0, prefilled: 0 });
    const s = this.settings;
    if (!s.enabled) return none('disabled');
    if (req.text.length > MAX_DOCUMENT_CHARS) return none('too-large');
    if (req.text.includes('\u0000')) return none('binary');
    const served = this.getModel();
    if (served === null) return none('no-model');
    const offset = Math.max(0, Math.min(req.offset, req.text.length));
    const prefix = req.text.slice(0, offset);
    const lineStart = prefix.lastIndexOf('\n') + 1;
    const lineEnd = req.text.indexOf('\n', offset);
    const restOfLine = req.text.slice(offset, lineEnd < 0 ? req.text.length : lineEnd);
    const linePrefix = prefix.slice(lineStart);
    const cursorIndent = /^[ \t]*/.exec(linePrefix)![0];
    const stopCtx = { mode: s.mode, cursorIndent, atLineStart: linePrefix.trim() === '' };

    // Typing-continuation: the user typed the start of the last suggestion.
    const last = this.lastByUri.get(req.uri);
    if (this.options.reuseSuggestions !== false && last !== undefined && last.step === served.step && prefix.startsWith(last.prefix)) {
      const typed = prefix.slice(last.prefix.length);
      if (typed.length > 0 && last.suggestion.startsWith(typed) && last.suggestion.length > typed.length) {
        const fit = fitToLine(last.suggestion.slice(typed.length), restOfLine);
        if (fit.text.length > 0) return { ...fit, reason: 'continued', tokens: 0, prefilled: 0 };
      }
    }

    const P = served.model.cfg.contextLength;
    const tailStart = stableTailStart(prefix, P * TAIL_CHARS_PER_TOKEN);
    const tail = prefix.slice(tailStart);
    const maxTokens = Math.max(1, Math.min(s.maxTokens, Math.floor(P / 2)));
    // Fill-in-the-middle: the code after the cursor, as much as the suffix's share of the window holds.
    const tok = served.tokenizer;
    const suffix = served.fim === true ? fimSuffix(req.text.slice(offset), tok, P, maxTokens) : null;
    const key = cacheKey(served.step, s, tail, restOfLine, suffix?.text ?? '');
    const hit = this.options.useCache === false ? undefined : this.cache.get(key);
    if (hit !== undefined) {
      this.cache.delete(key); // LRU: re-insert as newest
      this.cache.set(key, hit);
      this.lastByUri.set(req.uri, { prefix, suggestion: hit, step: served.step });
      return { ...fitToLine(hit, restOfLine), reason: 'cached', tokens: 0, prefilled: 0 };
    }

    const ids = Array.from(tok.encodeBytes(new TextEncoder().encode(tail)));
    // Token healing: the text before the cursor usually ends mid-word ("return Hel"), tokenized
    // as pieces the model rarely saw at a word's end. Back up over that partial word and let the
    // first generated tokens re-spell it: they must agree with its bytes.
    const heal = healingSplit(ids, tok, tail);
    // A file's first tokens follow <|endoftext|> in training; so does an empty prefix here.
    const promptIds = ids.slice(0, ids.length - heal.tokens);
    const prompt = tailStart === 0 ? [tok.eotId, ...promptIds] : promptIds.length > 0 ? promptIds : [tok.eotId];
    const window = suffix === null ? contextWindow(prompt, P, maxTokens) : fimPrompt(tok, prompt, suffix.ids, P - maxTokens, served.fimFormat ?? 'spm');
    const session = served.session;
    const reused = Math.min(session.commonPrefix(window), window.length - 1);
    const ngram = served.ngram;
    const copy = served.copy;
    let ngramBase: number[] = [];
    if (ngram !== undefined || copy !== undefined) {
      // The n-gram's history: the same prompt, extended further back (whole lines, tokenized apart
      // from the tail, which starts at a line start, so the tail's tokens are unchanged).
      const ngStart = stableTailStart(prefix, Math.max(NGRAM_TAIL_CHARS, P * TAIL_CHARS_PER_TOKEN));
      const head = ngStart < tailStart ? Array.from(tok.encodeBytes(new TextEncoder().encode(prefix.slice(ngStart, tailStart)))) : [];
      ngramBase = ngStart < tailStart ? [...(ngStart === 0 ? [tok.eotId] : []), ...head, ...promptIds] : prompt;
      syncHistory([ngram?.session, copy?.session], ngramBase);
      copy?.session.setDocument?.(documentPath(req.uri));
    }
    const mixed = new Float32Array(tok.vocabSize);
    const score = (l: Floats): Floats => {
      if (ngram === undefined && copy === undefined) return l;
      let out: Floats = mixed;
      if (ngram !== undefined) {
        const p = ngram.session.distribution();
        out = mixLogits(l, p, ngram.mixture.weights[ngram.session.bucket(p)] ?? 0.5, mixed);
      } else logSoftmax(l, mixed);
      if (copy !== undefined) {
        const pred = copy.session.predict();
        mixCopy(out, pred, copy.mixture.weights[copyBucket(pred.length)] ?? 0);
      }
      return out;
    };
    let logits = score(session.prime(window));
    const banned = new Set<number>([tok.specialId('<|fim_prefix|>'), tok.specialId('<|fim_middle|>'), tok.specialId('<|fim_suffix|>')]);
    const table = tokenTable(served);
    const decoder = new TextDecoder('utf-8');
    let generated = '';
    let logProbSum = 0;
    let n = 0;
    let keep = '';
    let stopped = false;
    /** Bytes of the healed word still to be re-spelled by generated tokens. */
    let pending = heal.bytes;
    const generatedIds: number[] = [];
    let decodeSteps = 0;
    const beamWidth = this.options.beamWidth ?? 1;
    if (beamWidth > 1 && s.temperature === 0) {
      const best = await beamSearch({
        width: beamWidth, maxTokens, window, first: logits, pending, table, banned, eot: tok.eotId, stopCtx, isCancelled,
        next: (h) => {
          syncHistory([ngram?.session, copy?.session], [...ngramBase, ...h]);
          return score(session.prime([...window, ...h]));
        },
      });
      if (best === null) return { ...none('cancelled'), prefilled: window.length - reused };
      n = best.ids.length;
      generatedIds.push(...best.ids);
      logProbSum = best.logProb;
      keep = best.keep;
      pending = new Uint8Array(0);
      stopped = true;
    }
    for (; !stopped && n < maxTokens; ) {
      const masked = pending.length > 0 ? maskToPrefix(logits, table, pending) : logits;
      if (masked === null) break;
      const { id, logProb } = sampleToken(masked, { temperature: s.temperature, topP: s.topP }, this.rng, banned);
      if (id === tok.eotId) break;
      n++;
      generatedIds.push(id);
      logProbSum += logProb;
      let bytes = table[id]!;
      if (pending.length > 0) {
        // The token covers (part of) the healed bytes: only what goes beyond them is new text.
        const covered = Math.min(pending.length, bytes.length);
        pending = pending.subarray(covered);
        bytes = bytes.subarray(covered);
      }
      generated += decoder.decode(bytes, { stream: true });
      const d = checkStop(generated, stopCtx);
      keep = d.keep;
      if (d.stop) { stopped = true; break; }
      if (n % YIELD_EVERY === 0) {
        await new Promise((r) => setImmediate(r));
        if (isCancelled()) return { ...none('cancelled'), tokens: n, prefilled: window.length - reused };
      }
      if (n < maxTokens) {
        pushHistory([ngram?.session, copy?.session], id);
        logits = score(session.append(id));
        decodeSteps++;
      }
    }
    if (!stopped && n > 0) keep = checkStop(generated + decoder.decode(), stopCtx).keep;
    if (pending.length > 0) keep = ''; // never re-spelled what was typed: no usable suggestion
    const meanLogProb = n > 0 ? logProbSum / n : -Infinity;
    const prefilled = window.length - reused;
    if (meanLogProb < s.minMeanLogProb) {
      return { text: '', replaceChars: 0, reason: 'low-confidence', tokens: n, prefilled, meanLogProb, ...(this.options.trace === true ? { trace: { window, reused, generated: generatedIds, decodeSteps } } : {}) };
    }
    // Remembered as generated (before fitting to the line), so a cache hit or a continuation
    // fits it to whatever follows the cursor then.
    const suggestion = keep.replace(/[ \t]+$/, '');
    this.remember(key, suggestion);
    this.lastByUri.set(req.uri, { prefix, suggestion, step: served.step });
    const { text, replaceChars } = fitToLine(suggestion, restOfLine);
    return {
      text, replaceChars, reason: text.length > 0 ? 'ok' : 'empty', tokens: n, prefilled, meanLogProb,
      ...(this.options.trace === true ? { trace: { window, reused, generated: generatedIds, decodeSteps } } : {}),
    };
  }

  private remember(key: string, text: string): void {
    this.cache.set(key, text);
    if (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
  }
}

interface Hypothesis {
  ids: number[];
  /** Sum of the tokens' log-probabilities. */
  logProb: number;
  /** Healed bytes still to be re-spelled. */
  pending: Uint8Array;
  /** Bytes of new text so far. */
  bytes: number[];
}

/** ln softmax(scores)[id] for every id, into `out` (scores may already be log-probabilities: then a no-op up to rounding). */
function logSoftmax<T extends Float32Array | Float64Array>(scores: ArrayLike<number>, out: T): T {
  let max = -Infinity;
  for (let v = 0; v < scores.length; v++) if (scores[v]! > max) max = scores[v]!;
  let z = 0;
  for (let v = 0; v < scores.length; v++) z += Math.exp(scores[v]! - max);
  const lz = max + Math.log(z);
  for (let v = 0; v < scores.length; v++) out[v] = scores[v]! - lz;
  return out;
}

/**
 * Beam search over completions: keeps the `width` most probable partial completions, extends each
 * by its `width` most probable next tokens, and sets aside those that end (a stop rule fires, eot,
 * or maxTokens). It ends when no partial completion is more probable than the best ended one —
 * extending only lowers a probability — and returns that one: the most probable whole completion
 * found, which is what exact match rewards, where greedy decoding returns the chain of locally
 * best tokens. Null when cancelled.
 */
async function beamSearch(a: {
  width: number; maxTokens: number; window: number[]; first: Floats; pending: Uint8Array; table: Uint8Array[];
  banned: ReadonlySet<number>; eot: number; stopCtx: Parameters<typeof checkStop>[1]; isCancelled: IsCancelled;
  /** Scores after the window and these generated ids. */
  next: (ids: number[]) => Floats;
}): Promise<{ ids: number[]; logProb: number; keep: string } | null> {
  const decoder = new TextDecoder('utf-8');
  const logp = new Float64Array(a.first.length);
  let live: Hypothesis[] = [{ ids: [], logProb: 0, pending: a.pending, bytes: [] }];
  let best: { ids: number[]; logProb: number; keep: string } | null = null;
  const finish = (ids: number[], logProb: number, keep: string): void => {
    if (best === null || logProb > best.logProb) best = { ids, logProb, keep };
  };
  for (let step = 0; step < a.maxTokens && live.length > 0; step++) {
    const candidates: Hypothesis[] = [];
    for (const h of live) {
      logSoftmax(step === 0 ? a.first : a.next(h.ids), logp);
      // The width best tokens that agree with the healed bytes.
      const top: number[] = [];
      for (let id = 0; id < logp.length; id++) {
        if (a.banned.has(id) || logp[id] === -Infinity) continue;
        if (h.pending.length > 0) {
          const b = a.table[id]!;
          let ok = b.length > 0;
          for (let i = 0; ok && i < Math.min(b.length, h.pending.length); i++) if (b[i] !== h.pending[i]) ok = false;
          if (!ok) continue;
        }
        if (top.length < a.width) {
          top.push(id);
          top.sort((x, y) => logp[y]! - logp[x]!);
        } else if (logp[id]! > logp[top[top.length - 1]!]!) {
          top[top.length - 1] = id;
          top.sort((x, y) => logp[y]! - logp[x]!);
        }
      }
      for (const id of top) {
        const lp = h.logProb + logp[id]!;
        if (id === a.eot) {
          if (h.pending.length === 0) finish(h.ids, lp, checkStop(decoder.decode(Uint8Array.from(h.bytes)), a.stopCtx).keep);
          continue;
        }
        let bytes = a.table[id]!;
        let pending = h.pending;
        if (pending.length > 0) {
          const covered = Math.min(pending.length, bytes.length);
          pending = pending.subarray(covered);
          bytes = bytes.subarray(covered);
        }
        const cand: Hypothesis = { ids: [...h.ids, id], logProb: lp, pending, bytes: [...h.bytes, ...bytes] };
        const d = checkStop(decoder.decode(Uint8Array.from(cand.bytes)), a.stopCtx);
        if (d.stop || cand.ids.length >= a.maxTokens) {
          if (pending.length === 0) finish(cand.ids, lp, d.keep);
        } else candidates.push(cand);
      }
    }
    candidates.sort((x, y) => y.logProb - x.logProb);
    live = candidates.slice(0, a.width);
    // Nothing still growing can beat what has ended.
    const b = best as { logProb: number } | null;
    if (b !== null && (live.length === 0 || live[0]!.logProb <= b.logProb)) break;
    await new Promise((r) => setImmediate(r));
    if (a.isCancelled()) return null;
  }
  return best ?? { ids: [], logProb: -Infinity, keep: '' };
}

/**
 * The FIM suffix for the text after the cursor: its first tokens, up to a third of the prompt
 * budget (the prefix usually says more about the next line than code further down), or null
 * when there is nothing but whitespace after the cursor (then the plain prompt is used).
 */
export function fimSuffix(after: string, tok: BpeTokenizer, P: number, maxTokens: number): { ids: number[]; text: string } | null {
  if (after.trim().length === 0) return null;
  const budget = Math.floor((P - maxTokens - 3) / 3);
  if (budget < 1) return null;
  const text = after.slice(0, budget * TAIL_CHARS_PER_TOKEN);
  const ids = Array.from(tok.encodeBytes(new TextEncoder().encode(text))).slice(0, budget);
  return { ids, text };
}

/**
 * The FIM prompt in the order the model was trained with (ml/dataset.ts), at most `budget` tokens:
 * the prefix gets what the suffix and the three sentinels leave.
 *   SPM: <|fim_prefix|> <|fim_suffix|> suffix <|fim_middle|> prefix   (the middle continues it)
 *   PSM: <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|>
 * In SPM only the end of the prompt changes while the user types, so the KV cache is reused.
 */
export function fimPrompt(tok: BpeTokenizer, prefix: number[], suffix: number[], budget: number, format: 'spm' | 'psm'): number[] {
  const [fp, fs, fm] = [tok.specialId('<|fim_prefix|>'), tok.specialId('<|fim_suffix|>'), tok.specialId('<|fim_middle|>')];
  const pre = contextWindow(prefix, Math.max(1, budget - 3 - suffix.length), 0);
  return format === 'psm' ? [fp, ...pre, fs, ...suffix, fm] : [fp, fs, ...suffix, fm, ...pre];
}

const tables = new WeakMap<CompletionModel, Uint8Array[]>();

/** Every token's bytes (specials as empty: they never spell text), computed once per model. */
function tokenTable(served: CompletionModel): Uint8Array[] {
  let t = tables.get(served);
  if (t === undefined) {
    const tok = served.tokenizer;
    t = Array.from({ length: tok.vocabSize }, (_, id) => (tok.isSpecialId(id) ? new Uint8Array(0) : tok.tokenBytes(id)));
    tables.set(served, t);
  }
  return t;
}

/** Identifier characters: a prompt ending in one of these ends mid-word. */
function isWordByte(b: number): boolean {
  return (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b === 95 || b >= 128;
}

/** How many trailing tokens to heal: those inside a trailing partial word (at most 4), else the last one. */
export function healingSplit(ids: number[], tok: { tokenBytes(id: number): Uint8Array }, tail: string): { tokens: number; bytes: Uint8Array } {
  if (ids.length < 2 || tail.length === 0) return { tokens: 0, bytes: new Uint8Array(0) };
  let k = 0;
  const parts: Uint8Array[] = [];
  while (k < Math.min(4, ids.length - 1)) {
    const b = tok.tokenBytes(ids[ids.length - 1 - k]!);
    if (b.length === 0 || !b.every(isWordByte)) break;
    parts.unshift(b);
    k++;
  }
  if (k === 0) {
    parts.push(tok.tokenBytes(ids[ids.length - 1]!));
    k = 1;
  }
  const bytes = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { bytes.set(p, o); o += p.length; }
  return { tokens: k, bytes };
}

/** Logits with every token that disagrees with `prefix` (neither extends it nor is a start of it) set to -Infinity. */
function maskToPrefix(logits: ArrayLike<number>, table: Uint8Array[], prefix: Uint8Array): Float32Array | null {
  const out = new Float32Array(logits.length);
  let allowed = 0;
  for (let id = 0; id < logits.length; id++) {
    const b = table[id]!;
    let ok = b.length > 0;
    for (let i = 0; ok && i < Math.min(b.length, prefix.length); i++) if (b[i] !== prefix[i]) ok = false;
    out[id] = ok ? logits[id]! : -Infinity;
    if (ok) allowed++;
  }
  return allowed > 0 ? out : null;
}

/**
 * Where the tokenized tail of the prefix starts: at a line start, at most ~maxChars before the
 * cursor, and only moving in TAIL_ALIGN steps — so as the user types, the tail's tokens (and the
 * KV cache built from them) stay the same except at the very end.
 */
function stableTailStart(prefix: string, maxChars: number): number {
  if (prefix.length <= maxChars) return 0;
  const aligned = Math.ceil((prefix.length - maxChars) / TAIL_ALIGN) * TAIL_ALIGN;
  const nl = prefix.indexOf('\n', aligned);
  return nl < 0 ? aligned : nl + 1;
}

function cacheKey(step: number | null, s: CompletionSettings, tail: string, restOfLine: string, suffix: string): string {
  return createHash('sha1')
    .update(`${step}|${s.mode}|${s.maxTokens}|${s.temperature}|${s.topP}|${s.minMeanLogProb}|`)
    .update(tail)
    .update('\u0000')
    .update(restOfLine)
    .update('\u0000')
    .update(suffix)
    .digest('hex');
}
