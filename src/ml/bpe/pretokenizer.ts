// The pre-tokenizer: text is first split into pieces by PRETOKENIZE_PATTERN; merges never cross
// a piece boundary. The pattern only distinguishes ASCII classes and treats every non-ASCII
// character as a letter. We run it on the latin1 view of the bytes (one char per byte, so bytes
// >= 0x80 are "letters"); for valid UTF-8 this gives exactly the same byte boundaries as running
// it on the decoded Unicode string, which is what Hugging Face tokenizers do. And it works on any
// bytes, including invalid UTF-8 and NUL.

// Character classes of the pre-tokenizer. Written as explicit ASCII ranges (no
// \w, \d, \s: those are Unicode-aware in Oniguruma) and as negated classes for
// "letters", so that every non-ASCII code point (or byte >= 0x80) is a letter.
/** A-Z, a-z, _ and everything non-ASCII. */
const LETTER = '[^\\x00-\\x40\\x5B-\\x5E\\x60\\x7B-\\x7F]';
/** LETTER or 0-9: the rest of an identifier. */
const WORD_CHAR = '[^\\x00-\\x2F\\x3A-\\x40\\x5B-\\x5E\\x60\\x7B-\\x7F]';
const DIGIT = '[0-9]';
/** ASCII punctuation and the control characters that are not whitespace. */
const PUNCT = '[\\x00-\\x08\\x0E-\\x1F\\x21-\\x2F\\x3A-\\x40\\x5B-\\x5E\\x60\\x7B-\\x7F]';
const NEWLINE = '[\\r\\n]';
/** Horizontal whitespace: tab, vertical tab, form feed, space. */
const BLANK = '[\\t\\x0B\\x0C ]';

/**
 * The pre-tokenizer regex. Alternatives, tried in order at each position:
 *   newline runs ("\n", "\r\n", "\n\n"...),
 *   identifiers with an optional single leading space (" foo", "int32_t", " 变量"),
 *   numbers in groups of at most 3 digits with an optional leading space,
 *   punctuation runs with an optional leading space (" =>", "();", " //"),
 *   runs of blanks (indentation, alignment, a lone space before a newline).
 * A run of 2+ spaces can't start a word (the word alternative allows one space),
 * so indentation stays a piece of its own: "    return" -> "    ", "return".
 * The classes partition all characters, so every character is matched and no
 * match is empty. The same source is valid JavaScript and Oniguruma syntax.
 */
export const PRETOKENIZE_PATTERN =
  `${NEWLINE}+| ?${LETTER}${WORD_CHAR}*| ?${DIGIT}{1,3}| ?${PUNCT}+|${BLANK}+`;

/** One char per byte (char code = byte). Chunked: fromCharCode takes one argument per char. */
export function bytesToLatin1(bytes: Uint8Array): string {
  const CHUNK = 8192;
  let text = '';
  for (let start = 0; start < bytes.length; start += CHUNK) {
    const chunk = bytes.subarray(start, Math.min(start + CHUNK, bytes.length));
    text += String.fromCharCode.apply(null, chunk as unknown as number[]);
  }
  return text;
}

/**
 * Splits bytes into pre-tokenizer pieces (subarrays of the input, in order).
 * Exposed for tests and tools; encoding and training use the same splitting (forEachPiece).
 */
export function splitIntoPieces(bytes: Uint8Array): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  forEachPiece(bytesToLatin1(bytes), (piece, start) => {
    pieces.push(bytes.subarray(start, start + piece.length));
  });
  return pieces;
}

/** Calls visit with every piece of a latin1 string (see bytesToLatin1) and its start, in order. */
export function forEachPiece(latin1: string, visit: (piece: string, start: number) => void): void {
  const regex = new RegExp(PRETOKENIZE_PATTERN, 'g');
  let position = 0;
  let match: RegExpExecArray | null;
  while ((match = regex.exec(latin1)) !== null) {
    // The classes cover every character, so there are never gaps; handle them anyway
    // so that no byte can ever be dropped.
    if (match.index > position) visit(latin1.slice(position, match.index), position);
    visit(match[0], match.index);
    position = match.index + match[0].length;
  }
  if (position < latin1.length) visit(latin1.slice(position), position);
}
