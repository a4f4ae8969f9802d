// What the model reads before a suggestion: the text before the cursor → tokens from a stable
// line boundary (so the KV cache survives typing) → token healing (back up over the partial word
// the cursor is in) → the GPT's window, a fill-in-the-middle prompt when there is code after the
// cursor, and the longer history the n-gram and copy models follow.

import type { BpeTokenizer } from '../ml/bpe';
import { contextWindow } from '../ml/sample';
import { SERVING } from '../ml/config';

export type FimFormat = 'spm' | 'psm';

/** Everything a decode needs to know about the prompt. */
export interface Prompt {
  /** The GPT's window: the end of the prefix (healed), or a FIM prompt. */
  window: number[];
  /** The document's tokens before the cursor (healed), reaching further back: for the n-gram and copy models. */
  history: number[];
  /** Bytes of the healed partial word: the first generated tokens must re-spell them. */
  healedBytes: Uint8Array;
}

export interface PromptInput {
  /** The text before the cursor. */
  prefix: string;
  /** The text after the cursor (the whole rest of the document). */
  after: string;
  tokenizer: BpeTokenizer;
  contextLength: number;
  /** Tokens reserved for the suggestion. */
  maxTokens: number;
  /** The FIM token order the model was trained with, or null: no FIM prompt. */
  fim: FimFormat | null;
  /** Whether the n-gram and copy models are mixed in (then the history reaches further back). */
  withHistory: boolean;
}

export function buildPrompt(a: PromptInput): Prompt {
  const tok = a.tokenizer;
  const P = a.contextLength;
  const tailStart = stableTailStart(a.prefix, P * SERVING.tailCharsPerToken);
  const tail = a.prefix.slice(tailStart);
  // Fill-in-the-middle: the code after the cursor, as much as the suffix's share of the window holds.
  const suffix = a.fim !== null ? fimSuffix(a.after, tok, P, a.maxTokens) : null;
  const ids = Array.from(tok.encodeBytes(new TextEncoder().encode(tail)));
  // Token healing: the text before the cursor usually ends mid-word ("return Hel"), tokenized
  // as pieces the model rarely saw at a word's end. Back up over that partial word and let the
  // first generated tokens re-spell it: they must agree with its bytes.
  const heal = healingSplit(ids, tok, tail);
  // A file's first tokens follow <|endoftext|> in training; so does an empty prefix here.
  const promptIds = ids.slice(0, ids.length - heal.tokens);
  const prompt = tailStart === 0 ? [tok.eotId, ...promptIds] : promptIds.length > 0 ? promptIds : [tok.eotId];
  const window = suffix === null ? contextWindow(prompt, P, a.maxTokens) : fimPrompt(tok, prompt, suffix.ids, P - a.maxTokens, a.fim!);
  let history = prompt;
  if (a.withHistory) {
    // The same prompt, extended further back (whole lines, tokenized apart from the tail, which
    // starts at a line start, so the tail's tokens are unchanged).
    const start = stableTailStart(a.prefix, Math.max(SERVING.historyChars, P * SERVING.tailCharsPerToken));
    if (start < tailStart) {
      const head = Array.from(tok.encodeBytes(new TextEncoder().encode(a.prefix.slice(start, tailStart))));
      history = [...(start === 0 ? [tok.eotId] : []), ...head, ...promptIds];
    }
  }
  return { window, history, healedBytes: heal.bytes };
}

/**
 * The FIM suffix for the text after the cursor: its first tokens, up to a third of the prompt
 * budget (the prefix usually says more about the next line than code further down), or null
 * when there is nothing but whitespace after the cursor (then the plain prompt is used).
 */
export function fimSuffix(after: string, tok: BpeTokenizer, P: number, maxTokens: number): { ids: number[]; text: string } | null {
  const budget = Math.floor((P - maxTokens - 3) / 3);
  if (budget < 1) return null;
  // Only what the suffix can hold is read (never the whole rest of the document).
  const text = after.slice(0, budget * SERVING.tailCharsPerToken);
  if (text.trim().length === 0) return null;
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
export function fimPrompt(tok: BpeTokenizer, prefix: number[], suffix: number[], budget: number, format: FimFormat): number[] {
  const [fp, fs, fm] = [tok.specialId('<|fim_prefix|>'), tok.specialId('<|fim_suffix|>'), tok.specialId('<|fim_middle|>')];
  const pre = contextWindow(prefix, Math.max(1, budget - 3 - suffix.length), 0);
  return format === 'psm' ? [fp, ...pre, fs, ...suffix, fm] : [fp, fs, ...suffix, fm, ...pre];
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

/**
 * Where the tokenized tail of the prefix starts: at a line start, at most ~maxChars before the
 * cursor, and only moving in SERVING.tailAlign steps — so as the user types, the tail's tokens
 * (and the KV cache built from them) stay the same except at the very end. The tail keeps at
 * least a quarter of maxChars: an alignment step larger than the window (a small model's) or a
 * newline right before the cursor must not leave the model (nearly) nothing to read.
 */
export function stableTailStart(prefix: string, maxChars: number): number {
  if (prefix.length <= maxChars) return 0;
  const minTail = maxChars / 4;
  let aligned = Math.ceil((prefix.length - maxChars) / SERVING.tailAlign) * SERVING.tailAlign;
  while (aligned > 0 && prefix.length - aligned < minTail) aligned -= SERVING.tailAlign;
  if (aligned <= 0) return 0;
  const nl = prefix.indexOf('\n', aligned);
  return nl >= 0 && prefix.length - (nl + 1) >= minTail ? nl + 1 : aligned;
}
