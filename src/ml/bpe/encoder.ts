// Encoding with learned merges: bytes → pre-tokenizer pieces → ids, applying the merges by rank
// inside each piece. Results are cached per piece (source code repeats its words).

import { bytesToLatin1, forEachPiece } from './pretokenizer';
import { BYTE_COUNT, Merge, PAIR_SHIFT } from './vocabulary';

/** Pieces longer than this use the heap-based merge loop (O(n log n) instead of O(n^2)). */
const LONG_PIECE_LENGTH = 48;
/** Pieces up to this length are cached; the cache is cleared when it grows past CACHE_LIMIT. */
const MAX_CACHED_PIECE_LENGTH = 256;
const CACHE_LIMIT = 100_000;

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

export class BpeEncoder {
  /** Merge i combines mergeLeft[i] and mergeRight[i] into token 256 + i. */
  private readonly mergeLeft: Uint32Array;
  private readonly mergeRight: Uint32Array;
  /** Packed pair (left * PAIR_SHIFT + right) -> merge rank. */
  private readonly ranks = new Map<number, number>();
  /** latin1 piece -> ids. Bounded: cleared when it reaches CACHE_LIMIT entries. */
  private readonly pieceCache = new Map<string, Uint32Array>();

  /** merges: valid ones, in rank order (the tokenizer checks them). */
  constructor(merges: ReadonlyArray<Merge>) {
    this.mergeLeft = Uint32Array.from(merges, ([left]) => left);
    this.mergeRight = Uint32Array.from(merges, ([, right]) => right);
    merges.forEach(([left, right], rank) => this.ranks.set(left * PAIR_SHIFT + right, rank));
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
}
