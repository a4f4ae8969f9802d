// The fast BPE trainer (src/ml/bpe/trainer.ts, behind BpeTokenizer.train) against the readable
// reference (src/ml/bpe/naiveTrainer.ts): the same merges, in the same order, on random and
// code-like corpora, with the cases the fast one has to get right by bookkeeping: overlapping
// pairs ("aaaa"), back-to-back merges, ties, pieces longer than MAX_TRAINING_PIECE_LENGTH, and
// minFrequency.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BpeTokenizer, MAX_TRAINING_PIECE_LENGTH } from '../src/ml/bpe';
import { trainMergesNaive } from '../src/ml/bpe/naiveTrainer';
import type { BpeTrainOptions } from '../src/ml/bpe/trainer';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** mulberry32, uniform in [0, 1). */
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

/** Random documents over a small alphabet, so pairs repeat and long merge chains form. */
function randomCorpus(seed: number, alphabet: string, docs: number, maxLength: number): Uint8Array[] {
  const random = makeRandom(seed);
  const symbols = Array.from(utf8(alphabet));
  return Array.from({ length: docs }, () => {
    const length = Math.floor(random() * maxLength);
    return Uint8Array.from({ length }, () => symbols[Math.floor(random() * symbols.length)]!);
  });
}

/** Code-like documents: identifiers, indentation, operators, numbers, a long blob, some UTF-8. */
function codeCorpus(seed: number, files: number): Uint8Array[] {
  const random = makeRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const names = ['value', 'index', 'count', 'result', 'items', 'buffer', 'length', 'offset', '变量', 'größe'];
  const lines = [
    (n: string) => `const ${n} = ${Math.floor(random() * 1000)};`,
    (n: string) => `    if (${n} > 0) {`,
    (n: string) => `        return ${n}.map((x) => x * 2);`,
    () => `    }`,
    (n: string) => `def ${n}(self, other):`,
    (n: string) => `        self.${n} += other.${n}  # accumulate`,
    (n: string) => `for (int i = 0; i < ${n}; i++) { ${n}[i] = 0; }`,
    () => `// ${'ab'.repeat(40)}`, // one piece longer than MAX_TRAINING_PIECE_LENGTH
    () => `\t\t"${'xyz'.repeat(30)}"`,
  ];
  return Array.from({ length: files }, () => {
    const out: string[] = [];
    for (let i = 0, n = 5 + Math.floor(random() * 30); i < n; i++) out.push(pick(lines)(pick(names)));
    return utf8(out.join(random() < 0.2 ? '\r\n' : '\n') + '\n');
  });
}

function assertSameMerges(label: string, docs: Uint8Array[], opts: BpeTrainOptions): number {
  const fast = BpeTokenizer.train(docs, opts).merges;
  const naive = trainMergesNaive(docs, opts);
  assert.deepEqual(fast, naive, `${label}: fast and naive trainers differ`);
  return fast.length;
}

describe('fast BPE trainer vs the naive reference', () => {
  it('random corpora over small alphabets, until no pair is frequent enough', () => {
    const alphabets = ['ab', 'aab ', 'abc\n', 'xy z\t', 'é€a'];
    alphabets.forEach((alphabet, i) => {
      for (const seed of [1, 2, 3]) {
        const docs = randomCorpus(seed * 100 + i, alphabet, 12, 300);
        const learned = assertSameMerges(`alphabet ${JSON.stringify(alphabet)} seed ${seed}`, docs, { vocabSize: 260 + 400 });
        assert.ok(learned > 10, `alphabet ${JSON.stringify(alphabet)}: only ${learned} merges learned`);
      }
    });
  });

  it('random corpora with minFrequency 1, 3 and a vocabulary that runs out first', () => {
    const docs = randomCorpus(7, 'abcd ', 8, 200);
    assertSameMerges('minFrequency 1', docs, { vocabSize: 260 + 300, minFrequency: 1 });
    assertSameMerges('minFrequency 3', docs, { vocabSize: 260 + 300, minFrequency: 3 });
    assert.equal(assertSameMerges('20 merges', docs, { vocabSize: 260 + 20 }), 20);
  });

  it('code-like corpora (identifiers, indentation, CRLF, UTF-8, pieces longer than the training cut)', () => {
    assert.ok('ab'.repeat(40).length > MAX_TRAINING_PIECE_LENGTH);
    for (const seed of [1, 2]) {
      const docs = codeCorpus(seed, 15);
      assertSameMerges(`code seed ${seed}`, docs, { vocabSize: 260 + 500 });
    }
  });

  it('edge cases: runs of one byte, back-to-back pairs, two spellings of the same bytes, empty input', () => {
    assertSameMerges('runs', [utf8('aaaa aaaaa aaaaaaa aa a'), utf8('aaaaaaaaaaaaaaaaaaaaa')], { vocabSize: 300, minFrequency: 1 });
    assertSameMerges('abab', [utf8('abababab ababab abab')], { vocabSize: 300, minFrequency: 1 });
    // Both (ab, c) and (a, bc) would spell "abc"; bc, ab and abc all compete.
    assertSameMerges('spellings', [utf8('abc abc abc bc bc bc bc ab ab xabc xbc')], { vocabSize: 300, minFrequency: 1 });
    assertSameMerges('empty', [], { vocabSize: 300 });
    assertSameMerges('single bytes', [utf8('a b c d e f')], { vocabSize: 300, minFrequency: 1 });
  });
});
