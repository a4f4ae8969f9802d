import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { BpeTokenizer, MAX_TRAINING_PIECE_LENGTH, PRETOKENIZE_PATTERN, SPECIAL_TOKENS, splitIntoPieces } from '../src/ml/bpe';

// ---------------------------------------------------------------------------
// Helpers

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const fromUtf8 = (bytes: Uint8Array): string => new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);

/** Small deterministic PRNG (mulberry32) so failures are reproducible. */
function makeRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

function randomBytes(random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  // Bias towards the interesting bytes: NUL, 0xFF, CR/LF, UTF-8 lead/continuation bytes.
  const special = [0x00, 0xff, 0x0d, 0x0a, 0x20, 0x09, 0xc3, 0xa9, 0xe4, 0xf0, 0x80, 0xbf];
  for (let i = 0; i < length; i++) {
    bytes[i] = random() < 0.4 ? pick(random, special) : Math.floor(random() * 256);
  }
  return bytes;
}

/** Valid Unicode (no lone surrogates), mixing code, whitespace, CJK, emoji, combining marks, BOM. */
function randomText(random: () => number, length: number): string {
  const pieces = [
    'a', 'Z', '_', '0', '7', ' ', '  ', '    ', '\t', '\n', '\r\n', '\r', '\n\n', '{', '}', '(', ')', ';', '=>',
    '<|endoftext|>', '//', '"', "'", '\\', '\0', '\x0B', '\x0C', '\x7F', '\x1B', 'é', 'ß', 'ü', '\u00A0', '\u00AD',
    '变量', '日本語', '😀', '👩‍💻', '🇫🇷', 'e\u0301', '\uFEFF', '\u2028', '\u0085', 'Ω', 'ﬁ', '١٢٣', '𝔘',
  ];
  let text = '';
  while (text.length < length) {
    const r = random();
    if (r < 0.5) text += pick(random, pieces);
    else if (r < 0.8) text += String.fromCharCode(0x20 + Math.floor(random() * 95));
    else {
      // Any scalar value except surrogates.
      let codePoint = Math.floor(random() * 0x110000);
      if (codePoint >= 0xd800 && codePoint <= 0xdfff) codePoint = 0x4e00;
      text += String.fromCodePoint(codePoint);
    }
  }
  return text;
}

/** A small synthetic multi-language code corpus (C, TypeScript, Python). */
function makeCodeCorpus(seed: number, files: number): Uint8Array[] {
  const random = makeRandom(seed);
  const names = ['count', 'index', 'buffer', 'value', 'result', 'node', 'items', 'total', 'size', 'name', 'data', 'key'];
  const types = ['int', 'size_t', 'char *', 'double', 'uint32_t'];
  const ident = (): string => pick(random, names) + (random() < 0.3 ? String(Math.floor(random() * 10)) : '');
  const number = (): string => String(Math.floor(random() * 5000));
  const generators = [
    (): string =>
      `#include <stdio.h>\n\nstatic ${pick(random, types)} ${ident()}(${pick(random, types)} ${ident()}) {\n` +
      `    for (int i = 0; i < ${number()}; i++) {\n        ${ident()} += ${ident()}[i];\n    }\n` +
      `    if (${ident()} == NULL) {\n        return -1;\n    }\n    printf("%d\\n", ${ident()});\n    return ${number()};\n}\n`,
    (): string =>
      `export function ${ident()}(${ident()}: number, ${ident()}: string): number {\n` +
      `  const ${ident()} = ${number()};\n  if (${ident()} === undefined) {\n    return ${ident()}.length;\n  }\n` +
      `  return ${ident()}.map((x) => x * ${number()}).filter(Boolean).length;\n}\n`,
    (): string =>
      `def ${ident()}(self, ${ident()}, ${ident()}=None):\n    """Return the ${ident()}."""\n` +
      `    for ${ident()} in range(${number()}):\n        if ${ident()} is None:\n            continue\n` +
      `        self.${ident()}.append(${ident()})\n    return ${ident()}\n`,
  ];
  const docs: Uint8Array[] = [];
  for (let f = 0; f < files; f++) {
    let text = '';
    const functions = 2 + Math.floor(random() * 4);
    for (let i = 0; i < functions; i++) text += pick(random, generators)() + '\n';
    docs.push(utf8(text));
  }
  return docs;
}

/**
 * Obviously-correct reference trainer: full recount of all pairs before every merge.
 * Like the real one it trains on pieces cut to MAX_TRAINING_PIECE_LENGTH bytes.
 */
function naiveTrain(docs: Uint8Array[], vocabSize: number, minFrequency = 2): Array<[number, number]> {
  const pieceFreq = new Map<string, number>();
  for (const doc of docs) {
    for (const piece of splitIntoPieces(doc)) {
      for (let start = 0; start < piece.length; start += MAX_TRAINING_PIECE_LENGTH) {
        const key = Array.from(piece.subarray(start, start + MAX_TRAINING_PIECE_LENGTH)).join(',');
        pieceFreq.set(key, (pieceFreq.get(key) ?? 0) + 1);
      }
    }
  }
  const words = Array.from(pieceFreq, ([key, freq]) => ({ symbols: key.split(',').map(Number), freq }));
  const tokenBytes: string[] = Array.from({ length: 256 }, (_, byte) => String.fromCharCode(byte));
  const banned = new Set<string>();
  const merges: Array<[number, number]> = [];
  while (merges.length < vocabSize - 256 - SPECIAL_TOKENS.length) {
    const counts = new Map<string, number>();
    for (const { symbols, freq } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]},${symbols[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + freq);
      }
    }
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [key, count] of counts) {
      if (banned.has(key)) continue;
      const [a, b] = key.split(',').map(Number);
      if (best === undefined || count > bestCount || (count === bestCount && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = count;
      }
    }
    if (best === undefined || bestCount < minFrequency) break;
    const [a, b] = best;
    if (tokenBytes.includes(tokenBytes[a] + tokenBytes[b])) {
      banned.add(`${a},${b}`);
      continue;
    }
    const newId = tokenBytes.length;
    tokenBytes.push(tokenBytes[a] + tokenBytes[b]);
    merges.push([a, b]);
    for (const word of words) {
      const merged: number[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === a && word.symbols[i + 1] === b) {
          merged.push(newId);
          i++;
        } else {
          merged.push(word.symbols[i]);
        }
      }
      word.symbols = merged;
    }
  }
  return merges;
}

/** Reference encoder: per piece, repeatedly merge the lowest-rank pair (leftmost first, one at a time). */
function naiveEncode(merges: Array<[number, number]>, bytes: Uint8Array): number[] {
  const rank = new Map(merges.map(([a, b], i) => [`${a},${b}`, i]));
  const ids: number[] = [];
  for (const piece of splitIntoPieces(bytes)) {
    const symbols = Array.from(piece);
    for (;;) {
      let bestIndex = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = rank.get(`${symbols[i]},${symbols[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          bestIndex = i;
        }
      }
      if (bestIndex < 0) break;
      symbols.splice(bestIndex, 2, 256 + bestRank);
    }
    ids.push(...symbols);
  }
  return ids;
}

const CODE_SAMPLES: Record<string, string> = {
  c: '#include <stdint.h>\n\nint main(int argc, char **argv) {\n\tuint32_t count = 0x1F;\n\tfor (int i = 0; i < 100000; ++i) {\n\t\tcount += argv[i][0];\n\t}\n\tprintf("%u\\n", count); /* done */\n\treturn 0;\n}\n',
  typescript: 'export async function loadItems(path: string): Promise<Item[]> {\n  const items = await readAll(path);\n  return items.filter((item) => item.size > 1_000_000 && item.name !== "");\n}\n',
  python: 'class Node:\n    def __init__(self, value=None):\n        self.value = value  # 3.14159\n        self.children = []\n\n    def walk(self):\n        for child in self.children:\n            yield from child.walk()\n',
  crlf: 'line one\r\n    indented line\r\n\r\n\tdone;\r\n',
  unicode: 'const größe = "日本語のテキスト"; // emoji 😀👩‍💻 café\nlet π = 3.14; let 变量 = π * 2;\n',
  endoftext: 'const marker = "<|endoftext|>";\nconst fim = "<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>";\n',
  whitespace: '  \t  leading\n\n\n\ntrailing   \n \n\x0B\x0Cform feed\n',
  longPieces: 'data = "' + 'QUJDRGVmZ2hpams'.repeat(40) + '"\n' + '/'.repeat(120) + '\n' + ' '.repeat(100) + 'x\n',
};

// One trained tokenizer shared by the tests that only need "some" tokenizer.
const SHARED_CORPUS = makeCodeCorpus(1, 120);
const SHARED_VOCAB_SIZE = 700;
let sharedTokenizer: BpeTokenizer | undefined;
function getShared(): BpeTokenizer {
  sharedTokenizer ??= BpeTokenizer.train(SHARED_CORPUS, { vocabSize: SHARED_VOCAB_SIZE });
  return sharedTokenizer;
}

// ---------------------------------------------------------------------------

describe('pre-tokenizer', () => {
  const split = (text: string): string[] => splitIntoPieces(utf8(text)).map(fromUtf8);

  test('keeps newlines and indentation as their own pieces', () => {
    assert.deepEqual(split('if (x) {\n    return y;\n}\n'), ['if', ' (', 'x', ')', ' {', '\n', '    ', 'return', ' y', ';', '\n', '}', '\n']);
    assert.deepEqual(split('a\r\n\r\n\t\tb'), ['a', '\r\n\r\n', '\t\t', 'b']);
    assert.deepEqual(split('x  = 1'), ['x', '  ', '=', ' 1']);
  });

  test('words take one leading space, digits come in groups of at most 3', () => {
    assert.deepEqual(split('let total_count2 = 1234567;'), ['let', ' total_count2', ' =', ' 123', '456', '7', ';']);
    assert.deepEqual(split('foo.bar() // done'), ['foo', '.', 'bar', '()', ' //', ' done']);
  });

  test('non-ASCII characters are letters, so UTF-8 sequences stay inside one piece', () => {
    assert.deepEqual(split('let 变量 = "café😀";'), ['let', ' 变量', ' =', ' "', 'café😀', '";']);
  });

  test('special token text is split like any other text', () => {
    assert.deepEqual(split('a<|endoftext|>b'), ['a', '<|', 'endoftext', '|>', 'b']);
  });

  test('pieces cover every byte exactly once, also for invalid UTF-8', () => {
    const random = makeRandom(7);
    for (let round = 0; round < 50; round++) {
      const bytes = randomBytes(random, 1 + Math.floor(random() * 300));
      const pieces = splitIntoPieces(bytes);
      assert.ok(pieces.every((piece) => piece.length > 0));
      assert.deepEqual(Buffer.concat(pieces), Buffer.from(bytes));
    }
  });

  test('splitting bytes (latin1 view) and splitting the Unicode string give the same boundaries', () => {
    const unicodeRegex = new RegExp(PRETOKENIZE_PATTERN, 'gu');
    const random = makeRandom(11);
    for (let round = 0; round < 200; round++) {
      const text = randomText(random, 1 + Math.floor(random() * 80));
      const fromUnicode = Array.from(text.matchAll(unicodeRegex), (match) => match[0]);
      assert.equal(fromUnicode.join(''), text, 'the regex must match every character');
      assert.deepEqual(split(text), fromUnicode);
    }
  });
});

describe('round trips', () => {
  test('decodeBytes(encodeBytes(x)) === x for random bytes, NUL, lone 0xFF, CRLF', () => {
    const tokenizer = getShared();
    const fixed = [new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0xff), Uint8Array.of(0x0d, 0x0a), Uint8Array.of(0xc3), Uint8Array.of(0xf0, 0x9f, 0x98), Uint8Array.of(0x80, 0x80, 0x20, 0xff, 0x00, 0x00)];
    const random = makeRandom(3);
    const randomCases = Array.from({ length: 200 }, () => randomBytes(random, Math.floor(random() * 500)));
    for (const bytes of [...fixed, ...randomCases]) {
      const ids = tokenizer.encodeBytes(bytes);
      assert.ok(ids.length <= bytes.length);
      assert.ok(ids.every((id) => id < tokenizer.vocabSize - SPECIAL_TOKENS.length));
      assert.deepEqual(tokenizer.decodeBytes(ids), bytes);
    }
  });

  test('decode(encode(s)) === s for random Unicode text incl. emoji, CJK and a leading BOM', () => {
    const tokenizer = getShared();
    const random = makeRandom(5);
    const cases = ['', '\uFEFFimport x', '😀', '变量名', ...Object.values(CODE_SAMPLES)];
    for (let i = 0; i < 200; i++) cases.push(randomText(random, Math.floor(random() * 200)));
    for (const text of cases) assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
  });

  test('encode equals the one-merge-at-a-time reference, including long pieces', () => {
    const tokenizer = getShared();
    const merges = tokenizer.merges;
    const random = makeRandom(9);
    const cases = [...Object.values(CODE_SAMPLES).map(utf8), utf8('_'.repeat(500)), utf8('ab'.repeat(300)), utf8('e'.repeat(1000))];
    for (let i = 0; i < 30; i++) cases.push(randomBytes(random, 400));
    for (const bytes of cases) assert.deepEqual(Array.from(tokenizer.encodeBytes(bytes)), naiveEncode(merges, bytes));
    // A second pass is served from the piece cache and must give the same ids.
    for (const bytes of cases) assert.deepEqual(Array.from(tokenizer.encodeBytes(bytes)), naiveEncode(merges, bytes));
  });
});

describe('training', () => {
  test('learns merges that compress code', () => {
    const tokenizer = getShared();
    assert.equal(tokenizer.vocabSize, SHARED_VOCAB_SIZE);
    assert.equal(tokenizer.merges.length, SHARED_VOCAB_SIZE - 256 - SPECIAL_TOKENS.length);
    const heldOut = makeCodeCorpus(2, 10);
    let bytes = 0;
    let tokens = 0;
    for (const doc of heldOut) {
      bytes += doc.length;
      tokens += tokenizer.encodeBytes(doc).length;
    }
    assert.ok(tokens * 2.5 < bytes, `expected > 2.5 bytes/token, got ${(bytes / tokens).toFixed(2)}`);
    // Indentation and common keywords became single tokens.
    for (const text of ['    ', 'return', '\n']) assert.equal(tokenizer.encode(text).length, 1, JSON.stringify(text));
  });

  test('is deterministic and reports progress up to 1', () => {
    const progress: number[] = [];
    const first = BpeTokenizer.train(SHARED_CORPUS, { vocabSize: SHARED_VOCAB_SIZE, onProgress: (f) => progress.push(f) });
    assert.deepEqual(first.merges, getShared().merges);
    assert.ok(progress.length > 10);
    assert.equal(progress[progress.length - 1], 1);
    assert.ok(progress.every((value, i) => value >= 0 && value <= 1 && (i === 0 || value >= progress[i - 1])));
  });

  test('fast incremental trainer matches the naive full-recount trainer', () => {
    const corpora: Array<[string, Uint8Array[], number]> = [
      ['code', makeCodeCorpus(4, 25), 2],
      // Runs of one symbol exercise overlapping pairs ("aaaa") and back-to-back merges.
      ['repetitive', [utf8('aaaa aaaaa aaaaaaa abab ababab aaabbb\n'.repeat(3)), utf8('xxxxxxxxxxxxxxxxxxxxxx yyyy xyxyxy')], 1],
      ['random bytes', Array.from({ length: 20 }, (_, i) => randomBytes(makeRandom(100 + i), 300)), 2],
      // Pieces longer than MAX_TRAINING_PIECE_LENGTH are trained on as chunks.
      ['long pieces', [utf8(Array.from({ length: 12 }, (_, i) => 'xy'.repeat(20 + i) + 'z'.repeat(90 - i)).join(' '))], 2],
    ];
    for (const [name, docs, minFrequency] of corpora) {
      const vocabSize = 500;
      const fast = BpeTokenizer.train(docs, { vocabSize, minFrequency }).merges;
      const naive = naiveTrain(docs, vocabSize, minFrequency);
      assert.ok(naive.length >= 20, `${name}: only ${naive.length} merges, too few for a meaningful check`);
      assert.deepEqual(fast, naive, name);
    }
  });

  test('stops early when the corpus supports fewer merges, honouring minFrequency', () => {
    const docs = [utf8('hello hello hello world')];
    const tokenizer = BpeTokenizer.train(docs, { vocabSize: 10_000 });
    assert.ok(tokenizer.vocabSize < 10_000);
    assert.equal(tokenizer.vocabSize, 256 + tokenizer.merges.length + SPECIAL_TOKENS.length);
    assert.deepEqual(Array.from(tokenizer.encode('hello hello')), [tokenizer.encode('hello')[0], tokenizer.encode(' hello')[0]]);
    // With minFrequency 4 nothing in this corpus qualifies ("hello" occurs 3 times).
    assert.equal(BpeTokenizer.train(docs, { vocabSize: 10_000, minFrequency: 4 }).merges.length, 0);
  });

  test('fromMerges rejects merges that would give two ids the same bytes', () => {
    const [a, b, c] = [97, 98, 99];
    // ab, abc = (ab, c), bc, then (a, bc) would spell "abc" again.
    assert.equal(BpeTokenizer.fromMerges([[a, b], [256, c], [b, c]]).vocabSize, 256 + 3 + SPECIAL_TOKENS.length);
    assert.throws(() => BpeTokenizer.fromMerges([[a, b], [256, c], [b, c], [a, 258]]), /repeats the bytes/);
    assert.throws(() => BpeTokenizer.fromMerges([[a, 300]]), /does not exist yet/);
  });

  test('rejects impossible vocab sizes', () => {
    assert.throws(() => BpeTokenizer.train([], { vocabSize: 100 }), RangeError);
    assert.throws(() => BpeTokenizer.train([], { vocabSize: 70_000 }), RangeError);
  });
});

describe('special tokens', () => {
  test('sit at the end of the vocabulary', () => {
    const tokenizer = getShared();
    assert.equal(tokenizer.eotId, tokenizer.vocabSize - 4);
    SPECIAL_TOKENS.forEach((token, i) => assert.equal(tokenizer.specialId(token), tokenizer.vocabSize - 4 + i));
    assert.throws(() => tokenizer.specialId('<|nope|>'), /unknown special token/);
  });

  test('are never produced from text, even text that spells them', () => {
    const tokenizer = getShared();
    const text = SPECIAL_TOKENS.join(' ') + '<|endoftext|><|endoftext|>';
    const ids = Array.from(tokenizer.encode(text));
    for (const token of SPECIAL_TOKENS) assert.ok(!ids.includes(tokenizer.specialId(token)));
    assert.equal(tokenizer.decode(ids), text);
  });

  test('decode to their text; tokenBytes rejects unknown ids', () => {
    const tokenizer = getShared();
    const ids = [...tokenizer.encode('a'), tokenizer.eotId, ...tokenizer.encode('b')];
    assert.equal(tokenizer.decode(ids), 'a<|endoftext|>b');
    assert.equal(fromUtf8(tokenizer.tokenBytes(tokenizer.specialId('<|fim_middle|>'))), '<|fim_middle|>');
    assert.throws(() => tokenizer.tokenBytes(tokenizer.vocabSize), RangeError);
    assert.throws(() => tokenizer.decode([-1]), RangeError);
  });
});

describe('Hugging Face tokenizer.json', () => {
  type HfTokenizer = {
    encode(text: string): { ids: number[] };
    decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  };
  let loadHf: (json: object) => HfTokenizer;

  before(async () => {
    const { Tokenizer } = await import('@huggingface/tokenizers');
    // clean_up_tokenization_spaces defaults to true in tokenizers.js and would turn " ." into ".".
    loadHf = (json) => new Tokenizer(json, getShared().toHuggingFaceConfig()) as unknown as HfTokenizer;
  });

  test('@huggingface/tokenizers gives the same ids and decodes back to the text', () => {
    const tokenizer = getShared();
    const hf = loadHf(tokenizer.toHuggingFaceJSON());
    const random = makeRandom(21);
    const texts = Object.entries(CODE_SAMPLES).filter(([name]) => name !== 'endoftext');
    for (let i = 0; i < 100; i++) texts.push([`random ${i}`, randomText(random, 1 + Math.floor(random() * 150)).replaceAll('<|endoftext|>', '<|x|>')]);
    for (const [name, text] of texts) {
      const ours = Array.from(tokenizer.encode(text));
      const theirs = hf.encode(text).ids;
      assert.deepEqual(theirs, ours, name);
      assert.equal(hf.decode(theirs), text, name);
    }
  });

  test('special token text: Hugging Face matches added tokens, we encode plain bytes', () => {
    const tokenizer = getShared();
    const hf = loadHf(tokenizer.toHuggingFaceJSON());
    const text = CODE_SAMPLES.endoftext;
    // HF splits the text at added tokens and encodes the parts in between like we do.
    const expected: number[] = [];
    for (const part of text.split(/(<\|[a-z_]+\|>)/)) {
      if ((SPECIAL_TOKENS as readonly string[]).includes(part)) expected.push(tokenizer.specialId(part));
      else expected.push(...tokenizer.encode(part));
    }
    assert.deepEqual(hf.encode(text).ids, expected);
    const ours = Array.from(tokenizer.encode(text));
    assert.ok(!ours.includes(tokenizer.eotId));
    assert.notDeepEqual(ours, expected);
    // Decoding our ids, with an inserted eot, agrees with HF.
    const withEot = [...ours, tokenizer.eotId];
    assert.equal(hf.decode(withEot), tokenizer.decode(withEot));
    assert.equal(hf.decode(withEot, { skip_special_tokens: true }), text);
  });

  test('has the standard tokenizer.json shape', () => {
    const tokenizer = getShared();
    const json = JSON.parse(JSON.stringify(tokenizer.toHuggingFaceJSON()));
    assert.equal(json.model.type, 'BPE');
    assert.equal(Object.keys(json.model.vocab).length, tokenizer.vocabSize);
    assert.equal(json.model.merges.length, tokenizer.merges.length);
    assert.equal(json.model.vocab['Ġ'], 0x20);
    assert.equal(json.model.vocab['Ċ'], 0x0a);
    assert.equal(json.model.vocab['<|endoftext|>'], tokenizer.eotId);
    assert.deepEqual(json.added_tokens.map((t: { content: string }) => t.content), [...SPECIAL_TOKENS]);
    assert.ok(json.added_tokens.every((t: { special: boolean; normalized: boolean }) => t.special && !t.normalized));
    assert.equal(json.pre_tokenizer.pretokenizers[0].pattern.Regex, PRETOKENIZE_PATTERN);
    assert.equal(json.pre_tokenizer.pretokenizers[0].behavior, 'Isolated');
    assert.equal(json.pre_tokenizer.pretokenizers[1].use_regex, false);
    assert.equal(json.decoder.type, 'ByteLevel');
    // Every merge is "left right" and produces the token with id 256 + rank.
    const idToName = new Map(Object.entries(json.model.vocab as Record<string, number>).map(([name, id]) => [id, name]));
    (json.model.merges as string[]).forEach((merge, rank) => {
      const [left, right] = merge.split(' ');
      assert.equal(json.model.vocab[left + right], 256 + rank);
      assert.equal(idToName.get(256 + rank), left + right);
    });
  });

  test('tokens spelled like Object.prototype keys ("__proto__", "constructor") survive export and import', () => {
    const text = 'obj.__proto__ = x.__proto__; constructor() { this.constructor = __proto__; } hasOwnProperty toString\n';
    const tokenizer = BpeTokenizer.train([new TextEncoder().encode(text.repeat(200))], { vocabSize: 320 });
    const json = JSON.parse(JSON.stringify(tokenizer.toHuggingFaceJSON()));
    assert.equal(Object.keys(json.model.vocab).length, tokenizer.vocabSize);
    // The corpus is made of these words, so BPE learns them whole (with their leading space or dot split off).
    for (const word of ['__proto__', 'constructor']) {
      assert.ok(Object.prototype.hasOwnProperty.call(json.model.vocab, word), `${word} is a token`);
    }
    const back = BpeTokenizer.fromHuggingFaceJSON(json);
    assert.deepEqual(Array.from(back.encode(text)), Array.from(tokenizer.encode(text)));
    assert.equal(back.decode(Array.from(back.encode(text))), text);
  });

  test('fromHuggingFaceJSON round trips through a JSON string', () => {
    const tokenizer = getShared();
    const restored = BpeTokenizer.fromHuggingFaceJSON(JSON.parse(JSON.stringify(tokenizer.toHuggingFaceJSON())));
    assert.equal(restored.vocabSize, tokenizer.vocabSize);
    assert.deepEqual(restored.merges, tokenizer.merges);
    for (const text of Object.values(CODE_SAMPLES)) assert.deepEqual(restored.encode(text), tokenizer.encode(text));
    // The newer [left, right] merge format is accepted too.
    const json = JSON.parse(JSON.stringify(tokenizer.toHuggingFaceJSON()));
    json.model.merges = json.model.merges.map((merge: string) => merge.split(' '));
    assert.deepEqual(BpeTokenizer.fromHuggingFaceJSON(json).merges, tokenizer.merges);
  });

  test('fromHuggingFaceJSON rejects malformed input with a clear Error', () => {
    const good = (): any => JSON.parse(JSON.stringify(getShared().toHuggingFaceJSON()));
    const cases: Array<[string, unknown, RegExp]> = [
      ['not an object', 'tokenizer', /expected an object/],
      ['no model', { ...good(), model: undefined }, /missing "model"/],
      ['wrong model type', (() => { const j = good(); j.model.type = 'WordPiece'; return j; })(), /model.type must be "BPE"/],
      ['merges not an array', (() => { const j = good(); j.model.merges = 'a b'; return j; })(), /merges must be an array/],
      ['foreign pre-tokenizer', (() => { const j = good(); j.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, use_regex: true }; return j; })(), /pre_tokenizer/],
      ['unknown merge token', (() => { const j = good(); j.model.merges[3] = 'nope nada'; return j; })(), /merge 3 uses a token missing/],
      ['merge with three parts', (() => { const j = good(); j.model.merges[0] = 'a b c'; return j; })(), /exactly two/],
      ['byte ids shuffled', (() => { const j = good(); j.model.vocab['Ġ'] = 1; return j; })(), /byte token/],
      ['missing special', (() => { const j = good(); delete j.model.vocab['<|fim_suffix|>']; return j; })(), /vocab has|fim_suffix/],
      ['special not marked special', (() => { const j = good(); j.added_tokens[0].special = false; return j; })(), /added_tokens/],
      ['bad id', (() => { const j = good(); j.model.vocab['Ġ'] = 'x'; return j; })(), /invalid id/],
    ];
    for (const [name, json, message] of cases) {
      assert.throws(() => BpeTokenizer.fromHuggingFaceJSON(json), (error: unknown) => {
        assert.ok(error instanceof Error, name);
        assert.match(error.message, /^Invalid BPE tokenizer\.json: /, name);
        assert.match(error.message, message, name);
        return true;
      });
    }
  });
});
