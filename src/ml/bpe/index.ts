/**
 * Byte-level BPE tokenizer for source code: training, encoding, decoding and
 * Hugging Face `tokenizer.json` export/import.
 *
 * Pure computation only (no fs, no vscode): callers hand in bytes and get ids.
 *
 * The parts:
 *   vocabulary.ts     the id layout (below) and the special tokens
 *   pretokenizer.ts   the regex split into pieces that merges never cross
 *   trainer.ts        fast BPE training; naiveTrainer.ts is its readable reference
 *   encoder.ts        applying the merges to pieces, with a cache
 *   huggingFace.ts    tokenizer.json / tokenizer_config.json writer and reader
 *
 * Id layout
 *   0..255                      the 256 single bytes, in byte order
 *   256..256+merges.length-1    one token per merge, in the order learned
 *   last 4 ids                  SPECIAL_TOKENS, in the order listed
 *
 * Special tokens are never produced by encode/encodeBytes: "<|endoftext|>" in
 * the input is encoded as ordinary bytes, so file contents can't inject control
 * tokens. Callers insert `eotId` (and the FIM ids) themselves.
 */

import { BpeEncoder } from './encoder';
import { huggingFaceTokenizerConfig, huggingFaceTokenizerJson, invalidJson, mergesFromHuggingFaceJson } from './huggingFace';
import { bytesToLatin1 } from './pretokenizer';
import { BpeTrainOptions, trainMerges } from './trainer';
import { BYTE_COUNT, MAX_VOCAB_SIZE, Merge, PAIR_SHIFT, SPECIAL_TOKENS } from './vocabulary';

export { PRETOKENIZE_PATTERN, splitIntoPieces } from './pretokenizer';
export { MAX_TRAINING_PIECE_LENGTH } from './trainer';
export type { BpeTrainOptions } from './trainer';
export { SPECIAL_TOKENS } from './vocabulary';
export type { SpecialToken } from './vocabulary';

const UTF8_ENCODER = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF, so decode(encode(s)) === s holds for it too.
const UTF8_DECODER = new TextDecoder('utf-8', { ignoreBOM: true });

export class BpeTokenizer {
  /** = 256 + merges.length + SPECIAL_TOKENS.length */
  readonly vocabSize: number;
  /** Id of <|endoftext|>. */
  readonly eotId: number;

  /** In rank order: merge i produces token 256 + i. */
  private readonly mergeList: ReadonlyArray<Merge>;
  /** Bytes of every id; specials hold the UTF-8 of their text. */
  private readonly bytesOfToken: Uint8Array[];
  private readonly firstSpecialId: number;
  private readonly encoder: BpeEncoder;

  private constructor(merges: ReadonlyArray<Merge>) {
    const mergeCount = merges.length;
    this.firstSpecialId = BYTE_COUNT + mergeCount;
    this.vocabSize = this.firstSpecialId + SPECIAL_TOKENS.length;
    if (this.vocabSize > MAX_VOCAB_SIZE) throw new RangeError(`vocabulary of ${this.vocabSize} exceeds ${MAX_VOCAB_SIZE}`);
    this.eotId = this.firstSpecialId + SPECIAL_TOKENS.indexOf('<|endoftext|>');

    this.bytesOfToken = new Array<Uint8Array>(this.vocabSize);
    for (let byte = 0; byte < BYTE_COUNT; byte++) this.bytesOfToken[byte] = Uint8Array.of(byte);
    // Distinct bytes per id keep the exported vocab (string -> id) a bijection.
    const seenTokens = new Set<string>(this.bytesOfToken.slice(0, BYTE_COUNT).map(bytesToLatin1));
    const seenPairs = new Set<number>();
    merges.forEach(([left, right], rank) => {
      const id = BYTE_COUNT + rank;
      if (!Number.isInteger(left) || !Number.isInteger(right) || left < 0 || right < 0 || left >= id || right >= id) {
        throw new RangeError(`merge ${rank} (${left}, ${right}) refers to a token that does not exist yet`);
      }
      const key = left * PAIR_SHIFT + right;
      if (seenPairs.has(key)) throw new RangeError(`merge ${rank} (${left}, ${right}) is a duplicate`);
      seenPairs.add(key);
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
    this.mergeList = merges.map(([left, right]) => [left, right] as const);
    this.encoder = new BpeEncoder(this.mergeList);
  }

  /** Builds a tokenizer from merges given as [left id, right id] in rank order. */
  static fromMerges(merges: ReadonlyArray<readonly [number, number]>): BpeTokenizer {
    return new BpeTokenizer(merges);
  }

  /** The learned merges in rank order; merge i produces token 256 + i. */
  get merges(): Array<[number, number]> {
    return this.mergeList.map(([left, right]) => [left, right]);
  }

  /**
   * Learns merges from raw file bytes (trainer.ts). Stops early (and the result has a smaller
   * vocabSize than asked) when no pair occurs at least `minFrequency` times.
   */
  static train(docs: Iterable<Uint8Array>, opts: BpeTrainOptions): BpeTokenizer {
    return new BpeTokenizer(trainMerges(docs, opts));
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
    return this.encoder.encodeBytes(bytes);
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
  // Hugging Face tokenizer.json (huggingFace.ts)

  /**
   * A complete tokenizer.json object (what it holds, and the one case where Hugging Face's ids
   * differ from ours: huggingFaceTokenizerJson).
   */
  toHuggingFaceJSON(): object {
    return huggingFaceTokenizerJson(this.bytesOfToken, this.mergeList);
  }

  /** A matching tokenizer_config.json object. */
  toHuggingFaceConfig(): object {
    return huggingFaceTokenizerConfig();
  }

  /**
   * Rebuilds a tokenizer from toHuggingFaceJSON() output (object or parsed JSON).
   * Only accepts our layout: byte tokens first, merge i -> id 256 + i, the special
   * tokens last, and our pre-tokenizer pattern. Throws an Error saying what is wrong.
   */
  static fromHuggingFaceJSON(json: unknown): BpeTokenizer {
    const merges = mergesFromHuggingFaceJson(json);
    try {
      return new BpeTokenizer(merges);
    } catch (error) {
      throw invalidJson((error as Error).message);
    }
  }
}
