/**
 * Byte-level BPE tokenizer for source code: training, encoding, decoding and
 * Hugging Face `tokenizer.json` export/import.
 *
 * Pure computation only (no fs, no vscode): callers hand in bytes and get ids.
 *
 * Id layout
 *   0..255                      the 256 single bytes, in byte order
 *   256..256+merges.length-1    one token per merge, in the order learned
 *   last 4 ids                  SPECIAL_TOKENS, in the order listed
 *
 * Pre-tokenization
 *   Text is first split into pieces by PRETOKENIZE_PATTERN; merges never cross a
 *   piece boundary. The pattern only distinguishes ASCII classes and treats every
 *   non-ASCII character as a letter. We run it on the latin1 view of the bytes
 *   (one char per byte, so bytes >= 0x80 are "letters"); for valid UTF-8 this
 *   gives exactly the same byte boundaries as running it on the decoded Unicode
 *   string, which is what Hugging Face tokenizers do. And it works on any bytes,
 *   including invalid UTF-8 and NUL.
 *
 * Special tokens are never produced by encode/encodeBytes: "<|endoftext|>" in
 * the input is encoded as ordinary bytes, so file contents can't inject control
 * tokens. Callers insert `eotId` (and the FIM ids) themselves.
 */

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>'] as const;
export type SpecialToken = (typeof SPECIAL_TOKENS)[number];

export interface BpeTrainOptions {
  /** Wanted vocabulary size including the 256 bytes and the special tokens (260..65536). */
  vocabSize: number;
  /** Called with 0..1 while merging; the last call is always 1. */
  onProgress?: (fraction: number) => void;
  /** Stop learning merges once the best pair occurs fewer times than this. Default 2. */
  minFrequency?: number;
}

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

const BYTE_COUNT = 256;
/** Pairs are packed into one number as left * PAIR_SHIFT + right, hence ids < 65536. */
const PAIR_SHIFT = 65536;
const MAX_VOCAB_SIZE = PAIR_SHIFT;
const MIN_VOCAB_SIZE = BYTE_COUNT + SPECIAL_TOKENS.length;
/**
 * Training cuts longer pieces into chunks of this many bytes. Merging rewrites
 * whole words, so one huge piece (a hex dump or base64 blob without separators)
 * would cost O(length) per merge and turn seconds into minutes; no useful token
 * is this long anyway. Encoding still sees the whole piece.
 */
export const MAX_TRAINING_PIECE_LENGTH = 64;
/** Pieces longer than this use the heap-based merge loop (O(n log n) instead of O(n^2)). */
const LONG_PIECE_LENGTH = 48;
/** Pieces up to this length are cached; the cache is cleared when it grows past CACHE_LIMIT. */
const MAX_CACHED_PIECE_LENGTH = 256;
const CACHE_LIMIT = 100_000;

const UTF8_ENCODER = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF, so decode(encode(s)) === s holds for it too.
const UTF8_DECODER = new TextDecoder('utf-8', { ignoreBOM: true });

// ---------------------------------------------------------------------------
// Byte <-> latin1 helpers

/** One char per byte (char code = byte). Chunked: fromCharCode takes one argument per char. */
function bytesToLatin1(bytes: Uint8Array): string {
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
 * Exposed for tests and tools; encode/train use the same splitting internally.
 */
export function splitIntoPieces(bytes: Uint8Array): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  forEachPiece(bytesToLatin1(bytes), (piece, start) => {
    pieces.push(bytes.subarray(start, start + piece.length));
  });
  return pieces;
}

function forEachPiece(latin1: string, visit: (piece: string, start: number) => void): void {
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

// ---------------------------------------------------------------------------
// GPT-2 byte <-> unicode alphabet used by Hugging Face ByteLevel: printable
// latin1 bytes map to themselves, the others to U+0100 and up, so every token
// is a printable string without spaces.

const BYTE_TO_UNICODE: string[] = (() => {
  const table: string[] = new Array<string>(BYTE_COUNT);
  let shifted = 0;
  for (let byte = 0; byte < BYTE_COUNT; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    table[byte] = String.fromCharCode(printable ? byte : BYTE_COUNT + shifted++);
  }
  return table;
})();

function bytesToByteLevelString(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += BYTE_TO_UNICODE[byte];
  return text;
}

// ---------------------------------------------------------------------------
// Max-heap of pair candidates for training, ordered by count (highest first),
// then by packed pair key (smallest first) so ties are broken deterministically.

class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  topCount(): number {
    return this.counts[0];
  }

  topKey(): number {
    return this.keys[0];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    this.siftUp(this.keys.length - 1);
  }

  pop(): void {
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length === 0) return;
    this.counts[0] = lastCount;
    this.keys[0] = lastKey;
    this.siftDown(0);
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    const count = this.counts[i];
    this.counts[i] = this.counts[j];
    this.counts[j] = count;
    const key = this.keys[i];
    this.keys[i] = this.keys[j];
    this.keys[j] = key;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const n = this.keys.length;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let best = i;
      if (left < n && this.before(left, best)) best = left;
      if (right < n && this.before(right, best)) best = right;
      if (best === i) return;
      this.swap(i, best);
      i = best;
    }
  }
}

// Min-heap of numbers, used when merging long pieces during encoding.
class NumberMinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const items = this.items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent] <= value) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = value;
  }

  pop(): number {
    const items = this.items;
    const top = items[0];
    const last = items.pop()!;
    const n = items.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && items[right] < items[left] ? right : left;
      if (items[child] >= last) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
    return top;
  }
}

// ---------------------------------------------------------------------------

/** Error thrown by fromHuggingFaceJSON; the message says what is wrong. */
function invalidJson(reason: string): Error {
  return new Error(`Invalid BPE tokenizer.json: ${reason}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class BpeTokenizer {
  /** = 256 + merges.length + SPECIAL_TOKENS.length */
  readonly vocabSize: number;
  /** Id of <|endoftext|>. */
  readonly eotId: number;

  /** Merge i combines mergeLeft[i] and mergeRight[i] into token 256 + i. */
  private readonly mergeLeft: Uint32Array;
  private readonly mergeRight: Uint32Array;
  /** Packed pair (left * PAIR_SHIFT + right) -> merge rank. */
  private readonly ranks = new Map<number, number>();
  /** Bytes of every id; specials hold the UTF-8 of their text. */
  private readonly bytesOfToken: Uint8Array[];
  private readonly firstSpecialId: number;
  /** latin1 piece -> ids. Bounded: cleared when it reaches CACHE_LIMIT entries. */
  private readonly pieceCache = new Map<string, Uint32Array>();

  private constructor(merges: ReadonlyArray<readonly [number, number]>) {
    const mergeCount = merges.length;
    this.mergeLeft = new Uint32Array(mergeCount);
    this.mergeRight = new Uint32Array(mergeCount);
    this.firstSpecialId = BYTE_COUNT + mergeCount;
    this.vocabSize = this.firstSpecialId + SPECIAL_TOKENS.length;
    if (this.vocabSize > MAX_VOCAB_SIZE) throw new RangeError(`vocabulary of ${this.vocabSize} exceeds ${MAX_VOCAB_SIZE}`);
    this.eotId = this.firstSpecialId + SPECIAL_TOKENS.indexOf('<|endoftext|>');

    this.bytesOfToken = new Array<Uint8Array>(this.vocabSize);
    for (let byte = 0; byte < BYTE_COUNT; byte++) this.bytesOfToken[byte] = Uint8Array.of(byte);
    // Distinct bytes per id keep the exported vocab (string -> id) a bijection.
    const seenTokens = new Set<string>(this.bytesOfToken.slice(0, BYTE_COUNT).map(bytesToLatin1));
    merges.forEach(([left, right], rank) => {
      const id = BYTE_COUNT + rank;
      if (!Number.isInteger(left) || !Number.isInteger(right) || left < 0 || right < 0 || left >= id || right >= id) {
        throw new RangeError(`merge ${rank} (${left}, ${right}) refers to a token that does not exist yet`);
      }
      const key = left * PAIR_SHIFT + right;
      if (this.ranks.has(key)) throw new RangeError(`merge ${rank} (${left}, ${right}) is a duplicate`);
      this.ranks.set(key, rank);
      this.mergeLeft[rank] = left;
      this.mergeRight[rank] = right;
      const leftBytes = this.bytesOfToken[left];
      const rightBytes = this.bytesOfToken[right];
      const bytes = new Uint8Array(leftBytes.length + rightBytes.length);
      bytes.set(leftBytes, 0);
      bytes.set(rightBytes, leftBytes.length);
      const text = bytesToLatin1(bytes);
      if (seenTokens.has(text)) throw new RangeError(`merge ${rank} (${left}, ${right}) repeats the bytes of an earlier token`);
      seenTokens.add(text);
      this.bytesOfToken[id] = bytes;
    });
    SPECIAL_TOKENS.forEach((token, i) => {
      this.bytesOfToken[this.firstSpecialId + i] = UTF8_ENCODER.encode(token);
    });
  }

  /** Builds a tokenizer from merges given as [left id, right id] in rank order. */
  static fromMerges(merges: ReadonlyArray<readonly [number, number]>): BpeTokenizer {
    return new BpeTokenizer(merges);
  }

  /** The learned merges in rank order; merge i produces token 256 + i. */
  get merges(): Array<[number, number]> {
    return Array.from(this.mergeLeft, (left, rank) => [left, this.mergeRight[rank]] as [number, number]);
  }

  // -------------------------------------------------------------------------
  // Training

  /**
   * Learns merges from raw file bytes. Stops early (and the result has a smaller
   * vocabSize than asked) when no pair occurs at least `minFrequency` times.
   *
   * Algorithm: count unique pieces once, then keep pair counts, pair -> words
   * that contain it, and a max-heap with lazy invalidation. Each merge only
   * touches the words containing the merged pair and pushes the pairs it created.
   * Ties: highest count, then smallest (left, right) ids.
   *
   * A pair whose concatenated bytes already exist as a token is skipped (never
   * merged), so every id has distinct bytes and the Hugging Face vocab (string ->
   * id) stays a bijection.
   */
  static train(docs: Iterable<Uint8Array>, opts: BpeTrainOptions): BpeTokenizer {
    const { vocabSize, onProgress } = opts;
    const minFrequency = opts.minFrequency ?? 2;
    if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE || vocabSize > MAX_VOCAB_SIZE) {
      throw new RangeError(`vocabSize must be an integer in ${MIN_VOCAB_SIZE}..${MAX_VOCAB_SIZE}, got ${vocabSize}`);
    }
    const targetMerges = vocabSize - MIN_VOCAB_SIZE;

    // 1. Unique pieces with their frequencies.
    const pieceCounts = new Map<string, number>();
    const countPiece = (piece: string): void => {
      pieceCounts.set(piece, (pieceCounts.get(piece) ?? 0) + 1);
    };
    for (const doc of docs) {
      forEachPiece(bytesToLatin1(doc), (piece) => {
        if (piece.length <= MAX_TRAINING_PIECE_LENGTH) return countPiece(piece);
        for (let start = 0; start < piece.length; start += MAX_TRAINING_PIECE_LENGTH) {
          countPiece(piece.slice(start, start + MAX_TRAINING_PIECE_LENGTH));
        }
      });
    }

    // 2. Words (pieces of 2+ bytes; single bytes never take part in a pair).
    const words: number[][] = [];
    const wordFreq: number[] = [];
    for (const [piece, count] of pieceCounts) {
      if (piece.length < 2) continue;
      const symbols = new Array<number>(piece.length);
      for (let i = 0; i < piece.length; i++) symbols[i] = piece.charCodeAt(i);
      words.push(symbols);
      wordFreq.push(count);
    }
    pieceCounts.clear();

    // 3. Pair counts and where each pair occurs. The word lists may hold words
    // that no longer contain the pair (we never remove from them); merging such a
    // word finds nothing and changes nothing.
    const pairCounts = new Map<number, number>();
    const pairWords = new Map<number, number[]>();
    const addCount = (key: number, delta: number): void => {
      const count = (pairCounts.get(key) ?? 0) + delta;
      if (count > 0) pairCounts.set(key, count);
      else pairCounts.delete(key);
    };
    const noteWord = (key: number, word: number): void => {
      const list = pairWords.get(key);
      if (list === undefined) pairWords.set(key, [word]);
      else if (list[list.length - 1] !== word) list.push(word);
    };
    for (let w = 0; w < words.length; w++) {
      const symbols = words[w];
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] * PAIR_SHIFT + symbols[i + 1];
        addCount(key, wordFreq[w]);
        noteWord(key, w);
      }
    }
    const heap = new PairHeap();
    for (const [key, count] of pairCounts) heap.push(count, key);

    // 4. Merge loop.
    const tokenText: string[] = []; // latin1 bytes of each id, to detect duplicates
    for (let byte = 0; byte < BYTE_COUNT; byte++) tokenText.push(String.fromCharCode(byte));
    const existingTokens = new Set<string>(tokenText);
    const merges: Array<[number, number]> = [];
    const progressStep = Math.max(1, Math.floor(targetMerges / 100));

    while (merges.length < targetMerges && heap.size > 0) {
      const key = heap.topKey();
      const storedCount = heap.topCount();
      heap.pop();
      const count = pairCounts.get(key) ?? 0;
      if (count !== storedCount) {
        // Stale entry: counts of existing pairs only go down, so re-queue with the true count.
        if (count > 0) heap.push(count, key);
        continue;
      }
      if (count < minFrequency) break;

      const left = Math.floor(key / PAIR_SHIFT);
      const right = key % PAIR_SHIFT;
      const text = tokenText[left] + tokenText[right];
      if (existingTokens.has(text)) {
        // Same bytes as an existing token: never merge this pair.
        pairCounts.delete(key);
        pairWords.delete(key);
        continue;
      }
      const newId = BYTE_COUNT + merges.length;
      merges.push([left, right]);
      tokenText.push(text);
      existingTokens.add(text);

      const touched = new Set<number>();
      for (const w of pairWords.get(key) ?? []) {
        // Compact the word in place, replacing occurrences left to right (a word
        // that no longer holds the pair passes through unchanged), and adjust the
        // neighbour pairs: (prev, left) becomes (prev, new) and (right, next)
        // becomes (new, next). "prev" is read from the already-written output so
        // that back-to-back merges ("a b a b") chain correctly.
        const symbols = words[w];
        const freq = wordFreq[w];
        const length = symbols.length;
        let write = 0;
        let read = 0;
        while (read < length) {
          if (read + 1 < length && symbols[read] === left && symbols[read + 1] === right) {
            if (write > 0) {
              const prev = symbols[write - 1];
              addCount(prev * PAIR_SHIFT + left, -freq);
              const newKey = prev * PAIR_SHIFT + newId;
              addCount(newKey, freq);
              noteWord(newKey, w);
              touched.add(newKey);
            }
            if (read + 2 < length) {
              const next = symbols[read + 2];
              addCount(right * PAIR_SHIFT + next, -freq);
              const newKey = newId * PAIR_SHIFT + next;
              addCount(newKey, freq);
              noteWord(newKey, w);
              touched.add(newKey);
            }
            symbols[write++] = newId;
            read += 2;
          } else {
            symbols[write++] = symbols[read++];
          }
        }
        if (write < length) symbols.length = write;
      }
      pairCounts.delete(key);
      pairWords.delete(key);
      for (const touchedKey of touched) {
        const touchedCount = pairCounts.get(touchedKey);
        if (touchedCount !== undefined) heap.push(touchedCount, touchedKey);
      }
      if (onProgress && merges.length % progressStep === 0) onProgress(merges.length / targetMerges);
    }
    onProgress?.(1);
    return new BpeTokenizer(merges);
  }

  // -------------------------------------------------------------------------
  // Encoding / decoding

  /** Id of a special token; throws for anything else. */
  specialId(token: string): number {
    const index = (SPECIAL_TOKENS as readonly string[]).indexOf(token);
    if (index < 0) throw new Error(`unknown special token ${JSON.stringify(token)}`);
    return this.firstSpecialId + index;
  }

  isSpecialId(id: number): boolean {
    return id >= this.firstSpecialId && id < this.vocabSize;
  }

  /**
   * Encodes a string as its UTF-8 bytes (lone surrogates become U+FFFD, as with
   * TextEncoder). Returns a Uint32Array of ids. Never produces special tokens.
   */
  encode(text: string): Uint32Array {
    return this.encodeBytes(UTF8_ENCODER.encode(text));
  }

  /** Encodes arbitrary bytes (invalid UTF-8 and NUL included). Never produces special tokens. */
  encodeBytes(bytes: Uint8Array): Uint32Array {
    // Code averages 3-4 bytes per token; start at a third of the bytes and grow
    // (never past bytes.length, as tokens never outnumber bytes).
    let out = new Uint32Array(Math.min(bytes.length, 16 + Math.ceil(bytes.length / 3)));
    let length = 0;
    forEachPiece(bytesToLatin1(bytes), (piece) => {
      if (length + piece.length > out.length) {
        const grown = new Uint32Array(Math.min(bytes.length, Math.max(out.length * 2, length + piece.length)));
        grown.set(out.subarray(0, length));
        out = grown;
      }
      if (piece.length === 1) {
        out[length++] = piece.charCodeAt(0);
        return;
      }
      const ids = this.encodePiece(piece);
      out.set(ids, length);
      length += ids.length;
    });
    return out.slice(0, length);
  }

  private encodePiece(piece: string): Uint32Array {
    const cached = this.pieceCache.get(piece);
    if (cached !== undefined) return cached;
    const ids = piece.length > LONG_PIECE_LENGTH ? this.mergeLongPiece(piece) : this.mergeShortPiece(piece);
    if (piece.length <= MAX_CACHED_PIECE_LENGTH) {
      if (this.pieceCache.size >= CACHE_LIMIT) this.pieceCache.clear();
      this.pieceCache.set(piece, ids);
    }
    return ids;
  }

  /**
   * Applies merges by rank: repeatedly take the lowest-rank adjacent pair and
   * merge all its occurrences left to right. Equivalent to Hugging Face's
   * (rank, position) priority queue, because a merge only creates pairs that
   * involve the new token, and those always have a higher rank.
   */
  private mergeShortPiece(piece: string): Uint32Array {
    let length = piece.length;
    const symbols = new Uint32Array(length);
    for (let i = 0; i < length; i++) symbols[i] = piece.charCodeAt(i);
    while (length > 1) {
      let bestRank = -1;
      for (let i = 0; i + 1 < length; i++) {
        const rank = this.ranks.get(symbols[i] * PAIR_SHIFT + symbols[i + 1]);
        if (rank !== undefined && (bestRank < 0 || rank < bestRank)) bestRank = rank;
      }
      if (bestRank < 0) break;
      const left = this.mergeLeft[bestRank];
      const right = this.mergeRight[bestRank];
      const newId = BYTE_COUNT + bestRank;
      let write = 0;
      for (let read = 0; read < length; ) {
        if (read + 1 < length && symbols[read] === left && symbols[read + 1] === right) {
          symbols[write++] = newId;
          read += 2;
        } else {
          symbols[write++] = symbols[read++];
        }
      }
      length = write;
    }
    return symbols.slice(0, length);
  }

  /**
   * Same result as mergeShortPiece in O(n log n): a linked list of symbols and a
   * min-heap of (rank, position) candidates, checked for staleness when popped.
   * Keeps minified lines or base64 blobs (one huge "word") from going quadratic.
   */
  private mergeLongPiece(piece: string): Uint32Array {
    const n = piece.length;
    const symbols = new Uint32Array(n);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    const POSITION_SHIFT = 2 ** 32; // heap item = rank * POSITION_SHIFT + position
    const heap = new NumberMinHeap();
    const pushPair = (position: number): void => {
      const after = next[position];
      if (after < 0) return;
      const rank = this.ranks.get(symbols[position] * PAIR_SHIFT + symbols[after]);
      if (rank !== undefined) heap.push(rank * POSITION_SHIFT + position);
    };
    for (let i = 0; i < n; i++) {
      symbols[i] = piece.charCodeAt(i);
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    for (let i = 0; i + 1 < n; i++) pushPair(i);

    while (heap.size > 0) {
      const item = heap.pop();
      const rank = Math.floor(item / POSITION_SHIFT);
      const position = item - rank * POSITION_SHIFT;
      const after = next[position];
      // Stale if this position was absorbed or either symbol changed since the push.
      if (!alive[position] || after < 0) continue;
      if (symbols[position] !== this.mergeLeft[rank] || symbols[after] !== this.mergeRight[rank]) continue;
      symbols[position] = BYTE_COUNT + rank;
      alive[after] = 0;
      next[position] = next[after];
      if (next[after] >= 0) prev[next[after]] = position;
      if (prev[position] >= 0) pushPair(prev[position]);
      pushPair(position);
    }

    const ids: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) ids.push(symbols[i]);
    return Uint32Array.from(ids);
  }

  /**
   * Bytes of one token. For a special token these are the UTF-8 bytes of its
   * text (e.g. "<|endoftext|>"), so decoding shows it the way Hugging Face does.
   */
  tokenBytes(id: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside 0..${this.vocabSize - 1}`);
    }
    return this.bytesOfToken[id];
  }

  /** Concatenated token bytes: exact inverse of encodeBytes. Specials give their text. */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let total = 0;
    for (let i = 0; i < ids.length; i++) total += this.tokenBytes(ids[i]).length;
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (let i = 0; i < ids.length; i++) {
      const tokenBytes = this.bytesOfToken[ids[i]];
      bytes.set(tokenBytes, offset);
      offset += tokenBytes.length;
    }
    return bytes;
  }

  /** UTF-8 decode of decodeBytes; invalid sequences become U+FFFD. A leading BOM is kept. */
  decode(ids: ArrayLike<number>): string {
    return UTF8_DECODER.decode(this.decodeBytes(ids));
  }

  // -------------------------------------------------------------------------
  // Hugging Face tokenizer.json

  /**
   * A complete tokenizer.json object (BPE model over the GPT-2 byte alphabet,
   * Split(PRETOKENIZE_PATTERN, Isolated) + ByteLevel(use_regex false) pre-tokenizer,
   * ByteLevel decoder, specials as added tokens with the same ids).
   *
   * Note: Hugging Face tokenizers do match added tokens inside text, so on text
   * that contains e.g. "<|endoftext|>" they return the special id where we return
   * the ordinary bytes. On all other text the ids are identical.
   */
  toHuggingFaceJSON(): object {
    // No prototype: a learned token may be spelled "__proto__" (or "constructor"), and on a plain
    // object that assignment would set the prototype instead of adding a key.
    const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
    const names: string[] = [];
    for (let id = 0; id < this.firstSpecialId; id++) {
      names.push(bytesToByteLevelString(this.bytesOfToken[id]));
      vocab[names[id]] = id;
    }
    SPECIAL_TOKENS.forEach((token, i) => {
      vocab[token] = this.firstSpecialId + i;
    });
    // "left right" strings: read by every version of the Rust library and by tokenizers.js.
    const merges = Array.from(this.mergeLeft, (left, rank) => `${names[left]} ${names[this.mergeRight[rank]]}`);
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: SPECIAL_TOKENS.map((content, i) => ({
        id: this.firstSpecialId + i,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: PRETOKENIZE_PATTERN }, behavior: 'Isolated', invert: false },
          byteLevel,
        ],
      },
      post_processor: null,
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges,
      },
    };
  }

  /**
   * A matching tokenizer_config.json object. clean_up_tokenization_spaces must be
   * false for code: otherwise decoders turn " ." into "." and so on.
   */
  toHuggingFaceConfig(): object {
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      clean_up_tokenization_spaces: false,
      add_prefix_space: false,
      bos_token: '<|endoftext|>',
      eos_token: '<|endoftext|>',
      additional_special_tokens: SPECIAL_TOKENS.filter((token) => token !== '<|endoftext|>'),
    };
  }

  /**
   * Rebuilds a tokenizer from toHuggingFaceJSON() output (object or parsed JSON).
   * Only accepts our layout: byte tokens first, merge i -> id 256 + i, the special
   * tokens last, and our pre-tokenizer pattern. Throws an Error saying what is wrong.
   */
  static fromHuggingFaceJSON(json: unknown): BpeTokenizer {
    if (!isRecord(json)) throw invalidJson('expected an object');
    const model = json.model;
    if (!isRecord(model)) throw invalidJson('missing "model" object');
    if (model.type !== 'BPE') throw invalidJson(`model.type must be "BPE", got ${JSON.stringify(model.type)}`);
    if (!isRecord(model.vocab)) throw invalidJson('model.vocab must be an object of token -> id');
    if (!Array.isArray(model.merges)) throw invalidJson('model.merges must be an array');

    const pattern = findSplitPattern(json.pre_tokenizer);
    if (pattern !== PRETOKENIZE_PATTERN) {
      throw invalidJson('pre_tokenizer is not the Split(PRETOKENIZE_PATTERN) + ByteLevel sequence this tokenizer uses');
    }

    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(model.vocab)) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw invalidJson(`vocab entry ${JSON.stringify(token)} has invalid id ${JSON.stringify(id)}`);
      }
      vocab.set(token, id);
    }
    for (let byte = 0; byte < BYTE_COUNT; byte++) {
      const name = BYTE_TO_UNICODE[byte];
      if (vocab.get(name) !== byte) throw invalidJson(`byte token ${JSON.stringify(name)} must have id ${byte}`);
    }

    const merges: Array<[number, number]> = [];
    model.merges.forEach((entry: unknown, rank: number) => {
      let parts: unknown[];
      if (typeof entry === 'string') parts = entry.split(' ');
      else if (Array.isArray(entry)) parts = entry;
      else throw invalidJson(`merge ${rank} must be a "left right" string or a [left, right] pair`);
      if (parts.length !== 2 || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') {
        throw invalidJson(`merge ${rank} must have exactly two token strings`);
      }
      const [leftName, rightName] = parts as [string, string];
      const left = vocab.get(leftName);
      const right = vocab.get(rightName);
      if (left === undefined || right === undefined) throw invalidJson(`merge ${rank} uses a token missing from the vocab`);
      const expectedId = BYTE_COUNT + rank;
      if (left >= expectedId || right >= expectedId) throw invalidJson(`merge ${rank} uses a token learned after it`);
      if (vocab.get(leftName + rightName) !== expectedId) {
        throw invalidJson(`merge ${rank} must produce ${JSON.stringify(leftName + rightName)} with id ${expectedId}`);
      }
      merges.push([left, right]);
    });

    const firstSpecialId = BYTE_COUNT + merges.length;
    const expectedSize = firstSpecialId + SPECIAL_TOKENS.length;
    if (vocab.size !== expectedSize) {
      throw invalidJson(`vocab has ${vocab.size} entries, expected 256 + ${merges.length} merges + ${SPECIAL_TOKENS.length} specials`);
    }
    const addedTokens = Array.isArray(json.added_tokens) ? json.added_tokens : [];
    SPECIAL_TOKENS.forEach((token, i) => {
      const id = firstSpecialId + i;
      if (vocab.get(token) !== id) throw invalidJson(`special token ${token} must have id ${id}`);
      const added = addedTokens.find((candidate: unknown) => isRecord(candidate) && candidate.content === token);
      if (!isRecord(added) || added.id !== id || added.special !== true) {
        throw invalidJson(`added_tokens must list ${token} with id ${id} and special: true`);
      }
    });
    try {
      return new BpeTokenizer(merges);
    } catch (error) {
      throw invalidJson((error as Error).message);
    }
  }
}

/** The Regex of the Split step in a Sequence [Split, ByteLevel] pre-tokenizer, or undefined. */
function findSplitPattern(preTokenizer: unknown): string | undefined {
  if (!isRecord(preTokenizer) || preTokenizer.type !== 'Sequence' || !Array.isArray(preTokenizer.pretokenizers)) return undefined;
  const [split, byteLevel] = preTokenizer.pretokenizers as unknown[];
  if (preTokenizer.pretokenizers.length !== 2 || !isRecord(split) || !isRecord(byteLevel)) return undefined;
  if (split.type !== 'Split' || split.behavior !== 'Isolated' || split.invert === true) return undefined;
  if (byteLevel.type !== 'ByteLevel' || byteLevel.use_regex !== false || byteLevel.add_prefix_space === true) return undefined;
  if (!isRecord(split.pattern) || typeof split.pattern.Regex !== 'string') return undefined;
  return split.pattern.Regex;
}
