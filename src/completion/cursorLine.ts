// What a suggestion needs to know of the cursor's line, read from at most SERVING.lineContextChars
// characters on each side of the cursor: the work per request stays bounded whatever the line
// (a minified bundle, a 1 MB line of whitespace). Nothing here scans to the line's ends.

import { SERVING } from '../ml/config';

export interface CursorLine {
  /** The text after the cursor up to the end of its line, at most lineContextChars of it. */
  restOfLine: string;
  /** True when the line goes on beyond restOfLine (it was cut at lineContextChars). */
  restTruncated: boolean;
  /** Leading whitespace of the cursor's line ('' when the line starts beyond the window). */
  cursorIndent: string;
  /** Only whitespace between the line's start and the cursor (false when the start is beyond the window). */
  atLineStart: boolean;
  /** The identifier characters right before the cursor (the word being typed), at most lineContextChars. */
  wordBefore: string;
}

const isBlank = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 11 || c === 12 || c === 0xa0 || c === 0xfeff;
/** Identifier characters as the completion item's filter sees them: [A-Za-z0-9_$]. */
const isWord = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36;

export function cursorLine(text: string, offset: number, window: number = SERVING.lineContextChars): CursorLine {
  // After the cursor: up to the newline, within the window.
  const ahead = text.slice(offset, offset + window + 1);
  const nl = ahead.indexOf('\n');
  const restTruncated = nl < 0 && ahead.length > window;
  const restOfLine = nl >= 0 ? ahead.slice(0, nl) : ahead.slice(0, window);
  // Before the cursor: back to the line start, within the window.
  const from = Math.max(0, offset - window);
  const behind = text.slice(from, offset);
  const lineStart = behind.lastIndexOf('\n');
  const startKnown = lineStart >= 0 || from === 0;
  const linePrefix = behind.slice(lineStart + 1);
  let indent = 0;
  while (indent < linePrefix.length && (linePrefix.charCodeAt(indent) === 32 || linePrefix.charCodeAt(indent) === 9)) indent++;
  let blank = true;
  for (let i = indent; i < linePrefix.length && blank; i++) blank = isBlank(linePrefix.charCodeAt(i));
  let w = linePrefix.length;
  while (w > 0 && isWord(linePrefix.charCodeAt(w - 1))) w--;
  return {
    restOfLine, restTruncated,
    cursorIndent: startKnown ? linePrefix.slice(0, indent) : '',
    atLineStart: startKnown && blank,
    wordBefore: linePrefix.slice(w),
  };
}
