// The id layout every part of the tokenizer shares:
//   0..255                      the 256 single bytes, in byte order
//   256..256+merges.length-1    one token per merge, in the order learned
//   last 4 ids                  SPECIAL_TOKENS, in the order listed

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>'] as const;
export type SpecialToken = (typeof SPECIAL_TOKENS)[number];

/** A merge: [left id, right id]; merge i produces id 256 + i. */
export type Merge = readonly [number, number];

export const BYTE_COUNT = 256;
/** Pairs are packed into one number as left * PAIR_SHIFT + right, hence ids < 65536. */
export const PAIR_SHIFT = 65536;
export const MAX_VOCAB_SIZE = PAIR_SHIFT;
const MIN_VOCAB_SIZE = BYTE_COUNT + SPECIAL_TOKENS.length;

/** Merges to learn for a wanted vocabulary size (bytes and specials included); throws if it is out of range. */
export function mergesForVocabSize(vocabSize: number): number {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE || vocabSize > MAX_VOCAB_SIZE) {
    throw new RangeError(`vocabSize must be an integer in ${MIN_VOCAB_SIZE}..${MAX_VOCAB_SIZE}, got ${vocabSize}`);
  }
  return vocabSize - MIN_VOCAB_SIZE;
}
