// Decoding a suggestion from the served model: greedy or sampled token by token (or beam search),
// with the healed bytes re-spelled first, stopped by the stop rules, yielding to the event loop
// so a newer request or $/cancelRequest gets through.

import type { BpeTokenizer } from '../ml/bpe';
import type { Floats } from '../ml/layers';
import { Rng } from '../ml/rng';
import { sampleToken } from '../ml/sample';
import { logSoftmax, ServedModel } from '../ml/servedModel';
import { SERVING } from '../ml/config';
import { checkStop, StopContext } from './stopRules';

/** Polled between tokens; when it returns true decoding stops (a newer request or LSP $/cancelRequest). */
export type IsCancelled = () => boolean;

export interface DecodeInput {
  model: ServedModel;
  tokenizer: BpeTokenizer;
  window: number[];
  history: number[];
  healedBytes: Uint8Array;
  maxTokens: number;
  temperature: number;
  topP: number;
  /** Hypotheses kept by beam search (1 = greedy or sampled). */
  beamWidth: number;
  stop: StopContext;
  rng: Rng;
  isCancelled: IsCancelled;
}

export interface Decoded {
  /** The suggestion as the stop rules keep it ('' when nothing usable). */
  text: string;
  /** Tokens generated. */
  tokens: number;
  logProbSum: number;
  generatedIds: number[];
  /** Tokens appended after the prime (the work a replay elsewhere must redo). */
  decodeSteps: number;
  cancelled: boolean;
}

/** Decodes one suggestion. The model is primed here with the window and history. */
export async function decodeSuggestion(a: DecodeInput): Promise<Decoded> {
  const tok = a.tokenizer;
  const model = a.model;
  const banned = specialsNeverGenerated(tok);
  const table = tokenTable(tok);
  let scores = model.prime(a.window, a.history);
  if (a.beamWidth > 1 && a.temperature === 0) {
    const best = await beamSearch({
      width: a.beamWidth, maxTokens: a.maxTokens, first: scores, pending: a.healedBytes, table, banned, eot: tok.eotId, stop: a.stop, isCancelled: a.isCancelled,
      next: (h) => model.prime([...a.window, ...h], [...a.history, ...h]),
    });
    if (best === null) return { text: '', tokens: 0, logProbSum: 0, generatedIds: [], decodeSteps: 0, cancelled: true };
    return { text: best.keep, tokens: best.ids.length, logProbSum: best.logProb, generatedIds: best.ids, decodeSteps: 0, cancelled: false };
  }
  const decoder = new TextDecoder('utf-8');
  let generated = '';
  let logProbSum = 0;
  let n = 0;
  let keep = '';
  let stopped = false;
  /** Bytes of the healed word still to be re-spelled by generated tokens. */
  let pending = a.healedBytes;
  const generatedIds: number[] = [];
  let decodeSteps = 0;
  while (n < a.maxTokens) {
    const masked = pending.length > 0 ? maskToPrefix(scores, table, pending) : scores;
    if (masked === null) break;
    const { id, logProb } = sampleToken(masked, { temperature: a.temperature, topP: a.topP }, a.rng, banned);
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
    const d = checkStop(generated, a.stop);
    keep = d.keep;
    if (d.stop) { stopped = true; break; }
    if (n % SERVING.yieldEvery === 0) {
      await new Promise((r) => setImmediate(r));
      if (a.isCancelled()) return { text: '', tokens: n, logProbSum, generatedIds, decodeSteps, cancelled: true };
    }
    if (n < a.maxTokens) {
      scores = model.append(id);
      decodeSteps++;
    }
  }
  if (!stopped && n > 0) keep = checkStop(generated + decoder.decode(), a.stop).keep;
  if (pending.length > 0) keep = ''; // never re-spelled what was typed: no usable suggestion
  return { text: keep, tokens: n, logProbSum, generatedIds, decodeSteps, cancelled: false };
}

const specials = new WeakMap<BpeTokenizer, ReadonlySet<number>>();

/** The FIM sentinels: part of prompts, never of a suggestion. */
function specialsNeverGenerated(tok: BpeTokenizer): ReadonlySet<number> {
  let s = specials.get(tok);
  if (s === undefined) {
    s = new Set<number>([tok.specialId('<|fim_prefix|>'), tok.specialId('<|fim_middle|>'), tok.specialId('<|fim_suffix|>')]);
    specials.set(tok, s);
  }
  return s;
}

const tables = new WeakMap<BpeTokenizer, Uint8Array[]>();

/** Every token's bytes (specials as empty: they never spell text), computed once per tokenizer. */
function tokenTable(tok: BpeTokenizer): Uint8Array[] {
  let t = tables.get(tok);
  if (t === undefined) {
    t = Array.from({ length: tok.vocabSize }, (_, id) => (tok.isSpecialId(id) ? new Uint8Array(0) : tok.tokenBytes(id)));
    tables.set(tok, t);
  }
  return t;
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

interface Hypothesis {
  ids: number[];
  /** Sum of the tokens' log-probabilities. */
  logProb: number;
  /** Healed bytes still to be re-spelled. */
  pending: Uint8Array;
  /** Bytes of new text so far. */
  bytes: number[];
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
  width: number; maxTokens: number; first: Floats; pending: Uint8Array; table: Uint8Array[];
  banned: ReadonlySet<number>; eot: number; stop: StopContext; isCancelled: IsCancelled;
  /** Scores after the prompt and these generated ids. */
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
          if (h.pending.length === 0) finish(h.ids, lp, checkStop(decoder.decode(Uint8Array.from(h.bytes)), a.stop).keep);
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
        const d = checkStop(decoder.decode(Uint8Array.from(cand.bytes)), a.stop);
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
