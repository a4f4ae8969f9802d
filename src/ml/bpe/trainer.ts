// Fast BPE training: learns the merges from raw file bytes. The readable reference it must agree
// with, merge for merge, is ./naiveTrainer.ts (test/bpe-trainer.test.ts compares them).

import { bytesToLatin1, forEachPiece } from './pretokenizer';
import { BYTE_COUNT, mergesForVocabSize, PAIR_SHIFT } from './vocabulary';

export interface BpeTrainOptions {
  /** Wanted vocabulary size including the 256 bytes and the special tokens (260..65536). */
  vocabSize: number;
  /** Called with 0..1 while merging; the last call is always 1. */
  onProgress?: (fraction: number) => void;
  /** Stop learning merges once the best pair occurs fewer times than this. Default 2. */
  minFrequency?: number;
}

/**
 * Training cuts longer pieces into chunks of this many bytes. Merging rewrites
 * whole words, so one huge piece (a hex dump or base64 blob without separators)
 * would cost O(length) per merge and turn seconds into minutes; no useful token
 * is this long anyway. Encoding still sees the whole piece.
 */
export const MAX_TRAINING_PIECE_LENGTH = 64;

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

/**
 * Learns merges from raw file bytes, fast (the reference: ./naiveTrainer.ts). Stops early (and the result has a smaller
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
export function trainMerges(docs: Iterable<Uint8Array>, opts: BpeTrainOptions): Array<[number, number]> {
  const { onProgress } = opts;
  const minFrequency = opts.minFrequency ?? 2;
  const targetMerges = mergesForVocabSize(opts.vocabSize);

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
  return merges;
}
