// The reference BPE trainer: the definition of what trainer.ts computes, written to be obviously
// correct, not fast (every merge recounts every pair of every word). test/bpe-trainer.test.ts
// checks that the fast trainer learns exactly these merges.
//
// The definition:
//   1. Words: the pre-tokenizer pieces of every document, cut into chunks of at most
//      MAX_TRAINING_PIECE_LENGTH bytes. A word starts as its bytes (ids 0..255).
//   2. Until there are enough merges: count every adjacent pair of ids in every word
//      (overlapping ones too: "aaa" holds (a, a) twice). Among the pairs whose bytes are not
//      already those of a token (merging one would give two ids the same bytes), take the most
//      frequent, ties to the smallest (left, right). Stop if it occurs fewer than minFrequency
//      times. Otherwise it is the next merge: its id is 256 + its rank, and every word replaces
//      the pair's occurrences, left to right, by that id.

import { splitIntoPieces } from './pretokenizer';
import { BpeTrainOptions, MAX_TRAINING_PIECE_LENGTH } from './trainer';
import { BYTE_COUNT, mergesForVocabSize } from './vocabulary';

/** The merges BpeTokenizer.train learns (onProgress is not called). */
export function trainMergesNaive(docs: Iterable<Uint8Array>, opts: BpeTrainOptions): Array<[number, number]> {
  const minFrequency = opts.minFrequency ?? 2;
  const wanted = mergesForVocabSize(opts.vocabSize);

  const words: number[][] = [];
  for (const doc of docs) {
    for (const piece of splitIntoPieces(doc)) {
      for (let start = 0; start < piece.length; start += MAX_TRAINING_PIECE_LENGTH) {
        words.push(Array.from(piece.subarray(start, start + MAX_TRAINING_PIECE_LENGTH)));
      }
    }
  }

  /** The bytes of every id so far, one char per byte. */
  const tokenText = Array.from({ length: BYTE_COUNT }, (_, byte) => String.fromCharCode(byte));
  const merges: Array<[number, number]> = [];
  while (merges.length < wanted) {
    const counts = new Map<string, { left: number; right: number; count: number }>();
    for (const word of words) {
      for (let i = 0; i + 1 < word.length; i++) {
        const key = `${word[i]} ${word[i + 1]}`;
        const pair = counts.get(key) ?? { left: word[i], right: word[i + 1], count: 0 };
        pair.count++;
        counts.set(key, pair);
      }
    }
    let best: { left: number; right: number; count: number } | null = null;
    for (const pair of counts.values()) {
      if (tokenText.includes(tokenText[pair.left] + tokenText[pair.right])) continue;
      const better = best === null || pair.count > best.count ||
        (pair.count === best.count && (pair.left < best.left || (pair.left === best.left && pair.right < best.right)));
      if (better) best = pair;
    }
    if (best === null || best.count < minFrequency) break;

    const { left, right } = best;
    const id = BYTE_COUNT + merges.length;
    merges.push([left, right]);
    tokenText.push(tokenText[left] + tokenText[right]);
    for (let w = 0; w < words.length; w++) {
      const word = words[w];
      const merged: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === left && word[i + 1] === right) {
          merged.push(id);
          i++;
        } else {
          merged.push(word[i]);
        }
      }
      words[w] = merged;
    }
  }
  return merges;
}
