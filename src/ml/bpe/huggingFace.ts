// Hugging Face tokenizer.json: the writer (a complete tokenizer.json and tokenizer_config.json for
// our merges, so transformers / tokenizers / tokenizers.js load the tokenizer as it is) and the
// reader, which accepts exactly the layout the writer produces.

import { PRETOKENIZE_PATTERN } from './pretokenizer';
import { BYTE_COUNT, Merge, SPECIAL_TOKENS } from './vocabulary';

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

/** Error thrown when reading a tokenizer.json; the message says what is wrong. */
export function invalidJson(reason: string): Error {
  return new Error(`Invalid BPE tokenizer.json: ${reason}`);
}

/**
 * Most ids a tokenizer.json may define: token ids are uint16 in train.bin / val.bin. Checked
 * before the vocabulary and merges are walked, so a hostile file costs no more than its size.
 */
export const MAX_TOKENIZER_IDS = 65_536;

/** A value from the file, for an error message: JSON, cut to 40 characters (a token could be megabytes). */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? text.slice(0, 40) + '…' : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A complete tokenizer.json object for these merges (bytesOfToken: the bytes of every id): BPE
 * model over the GPT-2 byte alphabet, Split(PRETOKENIZE_PATTERN, Isolated) + ByteLevel(use_regex
 * false) pre-tokenizer, ByteLevel decoder, specials as added tokens with the same ids.
 *
 * Note: Hugging Face tokenizers do match added tokens inside text, so on text
 * that contains e.g. "<|endoftext|>" they return the special id where we return
 * the ordinary bytes. On all other text the ids are identical.
 */
export function huggingFaceTokenizerJson(bytesOfToken: ReadonlyArray<Uint8Array>, merges: ReadonlyArray<Merge>): object {
  const firstSpecialId = BYTE_COUNT + merges.length;
  // No prototype: a learned token may be spelled "__proto__" (or "constructor"), and on a plain
  // object that assignment would set the prototype instead of adding a key.
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const names: string[] = [];
  for (let id = 0; id < firstSpecialId; id++) {
    names.push(bytesToByteLevelString(bytesOfToken[id]));
    vocab[names[id]] = id;
  }
  SPECIAL_TOKENS.forEach((token, i) => {
    vocab[token] = firstSpecialId + i;
  });
  // "left right" strings: read by every version of the Rust library and by tokenizers.js.
  const mergeNames = merges.map(([left, right]) => `${names[left]} ${names[right]}`);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, i) => ({
      id: firstSpecialId + i,
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
      merges: mergeNames,
    },
  };
}

/**
 * A matching tokenizer_config.json object. clean_up_tokenization_spaces must be
 * false for code: otherwise decoders turn " ." into "." and so on.
 */
export function huggingFaceTokenizerConfig(): object {
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
 * The merges of a huggingFaceTokenizerJson() output (object or parsed JSON). Only accepts our
 * layout: byte tokens first, merge i -> id 256 + i, the special tokens last, and our
 * pre-tokenizer pattern. Throws invalidJson(...) saying what is wrong; the tokenizer built from
 * the merges checks the rest.
 */
export function mergesFromHuggingFaceJson(json: unknown): Array<[number, number]> {
  if (!isRecord(json)) throw invalidJson('expected an object');
  const model = json.model;
  if (!isRecord(model)) throw invalidJson('missing "model" object');
  if (model.type !== 'BPE') throw invalidJson(`model.type must be "BPE", got ${shown(model.type)}`);
  if (!isRecord(model.vocab)) throw invalidJson('model.vocab must be an object of token -> id');
  if (!Array.isArray(model.merges)) throw invalidJson('model.merges must be an array');
  const maxMerges = MAX_TOKENIZER_IDS - BYTE_COUNT - SPECIAL_TOKENS.length;
  if (model.merges.length > maxMerges) {
    throw invalidJson(`${model.merges.length} merges: at most ${maxMerges} fit in ${MAX_TOKENIZER_IDS} token ids (uint16)`);
  }
  let entries = 0;
  for (const token in model.vocab) {
    if (!Object.prototype.hasOwnProperty.call(model.vocab, token)) continue;
    if (++entries > MAX_TOKENIZER_IDS) throw invalidJson(`model.vocab has more than ${MAX_TOKENIZER_IDS} entries (token ids are uint16)`);
  }

  const pattern = findSplitPattern(json.pre_tokenizer);
  if (pattern !== PRETOKENIZE_PATTERN) {
    throw invalidJson('pre_tokenizer is not the Split(PRETOKENIZE_PATTERN) + ByteLevel sequence this tokenizer uses');
  }

  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= MAX_TOKENIZER_IDS) {
      throw invalidJson(`vocab entry ${shown(token)} has invalid id ${shown(id)}`);
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
      throw invalidJson(`merge ${rank} must produce ${shown(leftName + rightName)} with id ${expectedId}`);
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
  return merges;
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
