// Completions from the served model: gating (settings, document size, binary), the caches (an LRU
// of identical requests, and the continuation of the last suggestion while the user types it),
// then prompt.ts (tail, healing, FIM) → the served model (ml/servedModel.ts: the GPT, the n-gram
// and copy models, per the `model` setting) → decode.ts (sampling or beam search, stop rules) →
// the confidence gate → the suggestion fitted to the rest of the line. Independent of LSP: the
// language server, `workspace-lm complete` and `eval` all call this engine.

import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Rng } from '../ml/rng';
import type { BpeTokenizer } from '../ml/bpe';
import type { ServedModel, ServedModelMode } from '../ml/servedModel';
import { SERVING } from '../ml/config';
import type { CompletionSettings } from '../shared/protocol';
import { buildPrompt, FimFormat, Prompt } from './prompt';
import { decodeSuggestion, IsCancelled } from './decode';
import { fitToLine } from './stopRules';
import { cursorLine } from './cursorLine';

export type { IsCancelled };

/** What the engine needs of a model: a loaded checkpoint (servingModel.ts), or `eval`'s and tests' assemblies of parts. */
export interface CompletionModel {
  /** Identifies the weights for the caches (null for imported weights). */
  step: number | null;
  /** The GPT's context length: bounds the prompt window (prompt + new tokens). */
  contextLength: number;
  tokenizer: BpeTokenizer;
  /** Trained with fill-in-the-middle: use the FIM prompt when there is code after the cursor. */
  fim?: boolean;
  /** Its FIM token order (default 'spm'; see ml/dataset.ts). */
  fimFormat?: FimFormat;
  /** The served model in this mode, or null when this model cannot serve it (why: `unavailable`). */
  decoder(mode: ServedModelMode): ServedModel | null;
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

/** Documents above this are not completed (generated data, dumps): no work at all. */
export const MAX_DOCUMENT_CHARS = SERVING.maxDocumentChars;

/** The file system path of a file: URI (so the copy model can recognise the document's training copy), else the URI. */
function documentPath(uri: string): string {
  if (!uri.startsWith('file:')) return uri;
  try {
    return fileURLToPath(uri);
  } catch {
    return uri;
  }
}

export class CompletionEngine {
  private readonly cache = new Map<string, string>();
  /** The last suggestion per document: typing its next characters keeps it without recomputing. */
  private readonly lastByUri = new Map<string, { prefix: string; suggestion: string; step: number | null }>();
  private readonly rng = new Rng(0);
  /** The decode running now (the next one starts when it settles). */
  private decoding: Promise<unknown> = Promise.resolve();

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
    const model = served?.decoder(s.model) ?? null;
    if (served === null || model === null) return none('no-model');
    const offset = Math.max(0, Math.min(req.offset, req.text.length));
    const prefix = req.text.slice(0, offset);
    const line = cursorLine(req.text, offset);
    const restOfLine = line.restOfLine;
    const fit = (suggestion: string): { text: string; replaceChars: number } => fitToLine(suggestion, restOfLine, line.restTruncated);
    const stop = { mode: s.mode, cursorIndent: line.cursorIndent, atLineStart: line.atLineStart };

    // Typing-continuation: the user typed the start of the last suggestion.
    const last = this.lastByUri.get(req.uri);
    if (this.options.reuseSuggestions !== false && last !== undefined && last.step === served.step && prefix.startsWith(last.prefix)) {
      const typed = prefix.slice(last.prefix.length);
      if (typed.length > 0 && last.suggestion.startsWith(typed) && last.suggestion.length > typed.length) {
        const fitted = fit(last.suggestion.slice(typed.length));
        if (fitted.text.length > 0) return { ...fitted, reason: 'continued', tokens: 0, prefilled: 0 };
      }
    }

    const P = served.contextLength;
    const maxTokens = Math.max(1, Math.min(s.maxTokens, Math.floor(P / 2)));
    const prompt = buildPrompt({
      prefix, after: req.text.slice(offset), tokenizer: served.tokenizer, contextLength: P, maxTokens,
      fim: served.fim === true ? served.fimFormat ?? 'spm' : null, withHistory: model.followsHistory,
    });
    const docPath = documentPath(req.uri);
    const key = cacheKey(served.step, s, prompt, model.followsHistory, docPath, restOfLine + (line.restTruncated ? '\u0000…' : ''));
    const hit = this.options.useCache === false ? undefined : this.cache.get(key);
    if (hit !== undefined) {
      this.cache.delete(key); // LRU: re-insert as newest
      this.cache.set(key, hit);
      this.lastByUri.set(req.uri, { prefix, suggestion: hit, step: served.step });
      return { ...fit(hit), reason: 'cached', tokens: 0, prefilled: 0 };
    }

    // One decode at a time: the served model's sessions (the KV cache, the n-gram and copy
    // histories) follow one document, and a decode yields between tokens, so a second request
    // (another document) must wait rather than interleave its tokens with the first one's.
    const turn = this.decoding.then(async () => {
      if (isCancelled()) return null;
      const reused = Math.min(model.commonPrefix(prompt.window), prompt.window.length - 1);
      model.setDocument(docPath);
      const decoded = await decodeSuggestion({
        model, tokenizer: served.tokenizer, window: prompt.window, history: prompt.history, healedBytes: prompt.healedBytes,
        maxTokens, temperature: s.temperature, topP: s.topP, beamWidth: this.options.beamWidth ?? 1, stop, rng: this.rng, isCancelled,
      });
      return { decoded, reused };
    });
    this.decoding = turn.catch(() => undefined);
    const done = await turn;
    if (done === null) return none('cancelled');
    const { decoded: d, reused } = done;
    const prefilled = prompt.window.length - reused;
    if (d.cancelled) return { ...none('cancelled'), tokens: d.tokens, prefilled };
    const meanLogProb = d.tokens > 0 ? d.logProbSum / d.tokens : -Infinity;
    const trace = this.options.trace === true ? { trace: { window: prompt.window, reused, generated: d.generatedIds, decodeSteps: d.decodeSteps } } : {};
    if (meanLogProb < s.minMeanLogProb) return { text: '', replaceChars: 0, reason: 'low-confidence', tokens: d.tokens, prefilled, meanLogProb, ...trace };
    // Remembered as generated (before fitting to the line), so a cache hit or a continuation
    // fits it to whatever follows the cursor then.
    const suggestion = d.text.replace(/[ \t]+$/, '');
    this.remember(key, suggestion);
    this.lastByUri.set(req.uri, { prefix, suggestion, step: served.step });
    const { text, replaceChars } = fit(suggestion);
    return { text, replaceChars, reason: text.length > 0 ? 'ok' : 'empty', tokens: d.tokens, prefilled, meanLogProb, ...trace };
  }

  private remember(key: string, text: string): void {
    this.cache.set(key, text);
    if (this.cache.size > SERVING.cacheEntries) this.cache.delete(this.cache.keys().next().value!);
  }
}

/** Identifies a suggestion by everything it depends on: the weights, the settings, the model's inputs (window, healed bytes, and with the count models the history and which training copy the copy model leaves out), and the rest of the line. */
function cacheKey(step: number | null, s: CompletionSettings, prompt: Prompt, followsHistory: boolean, docPath: string, restOfLine: string): string {
  const h = createHash('sha1')
    .update(`${step}|${s.model}|${s.mode}|${s.maxTokens}|${s.temperature}|${s.topP}|${s.minMeanLogProb}|${followsHistory ? docPath : ''}\u0000`)
    .update(Int32Array.from(prompt.window))
    .update('\u0000')
    .update(prompt.healedBytes)
    .update('\u0000');
  if (followsHistory) h.update(Int32Array.from(prompt.history));
  return h.update('\u0000').update(restOfLine).digest('hex');
}
