// When a completion ends, and what of it to show. Pure text logic, applied to the decoded text as
// tokens arrive (so decoding stops as soon as the answer is complete) and once more at the end.

import type { CompletionMode } from '../shared/protocol';

export interface StopContext {
  mode: CompletionMode;
  /** Leading whitespace of the line the cursor is on (up to the first non-blank). */
  cursorIndent: string;
  /** True when the cursor line has only whitespace before the cursor (a fresh statement starts). */
  atLineStart: boolean;
}

export interface StopDecision {
  /** Stop decoding now. */
  stop: boolean;
  /** The part of the generated text to keep (a prefix of it). */
  keep: string;
}

function indentWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    if (ch === ' ') w += 1;
    else if (ch === '\t') w += 4;
    else break;
  }
  return w;
}

const CLOSER = /^[ \t]*[}\])]/;
const STATEMENT_END = /[;{}):]\s*$/;

/**
 * Examines the text generated so far.
 * line mode: ends at the first newline (the newline is not kept).
 * block mode: ends before a line that dedents below the cursor's indentation; a closing bracket
 * line at the cursor's level is kept and ends the block; a line at the cursor's level (not a
 * closer) ends it before that line when the block started mid-line; a blank line after a
 * complete statement ends it.
 */
export function checkStop(generated: string, ctx: StopContext): StopDecision {
  const nl = generated.indexOf('\n');
  if (ctx.mode === 'line') {
    return nl < 0 ? { stop: false, keep: generated } : { stop: true, keep: generated.slice(0, nl) };
  }
  const lines = generated.split('\n');
  // The last element is the line still being generated: only complete lines are judged.
  const base = indentWidth(ctx.cursorIndent);
  let kept = lines[0]!;
  for (let i = 1; i < lines.length - 1; i++) {
    const line = lines[i]!;
    if (line.trim() === '') {
      // Blank line: the end if what came before is a complete statement.
      if (STATEMENT_END.test(kept)) return { stop: true, keep: kept };
      kept += '\n' + line;
      continue;
    }
    const w = indentWidth(line);
    if (w < base) return { stop: true, keep: kept };
    if (w === base) {
      if (CLOSER.test(line)) return { stop: true, keep: kept + '\n' + line };
      if (!ctx.atLineStart) return { stop: true, keep: kept };
    }
    kept += '\n' + line;
  }
  return { stop: false, keep: lines.length === 1 ? generated : kept + '\n' + lines[lines.length - 1]! };
}

/**
 * Removes what would duplicate the text right after the cursor: the longest end of the
 * suggestion that equals the start of the rest of the line (typing `foo(` before an
 * auto-inserted `)` must not suggest `a, b))`). A suggestion that is only a repeat of what
 * follows the cursor becomes empty.
 */
export function trimAgainstSuffix(suggestion: string, restOfLine: string): string {
  // trimEnd, not /\s+$/: the regex is quadratic on a long run of whitespace.
  const rest = restOfLine.trimEnd();
  if (rest.length === 0 || suggestion.length === 0) return suggestion;
  if (rest.startsWith(suggestion.trimEnd())) return '';
  const firstLineEnd = suggestion.indexOf('\n');
  const head = firstLineEnd < 0 ? suggestion : suggestion.slice(0, firstLineEnd);
  const tail = firstLineEnd < 0 ? '' : suggestion.slice(firstLineEnd);
  for (let k = Math.min(head.length, rest.length); k > 0; k--) {
    if (head.endsWith(rest.slice(0, k))) return head.slice(0, head.length - k) + tail;
  }
  return suggestion;
}

/** True if every character of `needle` appears in `hay` in order. */
function isSubsequence(needle: string, hay: string): boolean {
  let i = 0;
  for (let j = 0; j < hay.length && i < needle.length; j++) if (hay[j] === needle[i]) i++;
  return i === needle.length;
}

/**
 * Fits a suggestion to the text after the cursor on its line. Editors auto-close brackets and
 * quotes, so `return "Hel|"` has a `"` after the cursor that the suggestion `lo, " + name;` also
 * contains: the suggestion then REPLACES the rest of the line (replaceChars > 0), which the editor
 * shows as ghost text around the existing closers and Tab turns into exactly the suggested line.
 * Otherwise the suggestion is inserted at the cursor, minus any end of it that would duplicate
 * the start of the rest of the line (trimAgainstSuffix). restOfLine is what the engine read of
 * the line (cursorLine.ts); restTruncated says the line goes on beyond it.
 */
export function fitToLine(suggestion: string, restOfLine: string, restTruncated = false): { text: string; replaceChars: number } {
  const rest = restOfLine.trimEnd();
  // A rest of the line that was cut (the line goes on) is long: never a few auto-closed characters.
  if (!restTruncated && rest.length > 0 && rest.length <= 16 && !suggestion.includes('\n') && isSubsequence(rest, suggestion)) {
    // A suggestion that adds nothing to what is already there is no suggestion.
    return suggestion.trimEnd() === rest ? { text: '', replaceChars: 0 } : { text: suggestion, replaceChars: rest.length };
  }
  return { text: trimAgainstSuffix(suggestion, restOfLine), replaceChars: 0 };
}
