// The completion metrics on cases small enough to work out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bitsPerByte, editSimilarity, exactMatch, indelDistance, lcsLength, LineScores, splitWhitespace } from '../src/ml/metrics';

const close = (a: number, b: number, why = ''): void => assert.ok(Math.abs(a - b) <= 1e-12, `${a} != ${b} ${why}`);

test('exact match is CodeXGLUE\'s pred.split() == gt.split()', () => {
  assert.deepEqual(splitWhitespace('  a  b\tc \n'), ['a', 'b', 'c']);
  assert.equal(exactMatch('return x;', 'return x;'), true);
  assert.equal(exactMatch('  return   x; ', 'return x;'), true, 'leading, trailing and repeated whitespace do not count');
  assert.equal(exactMatch('return x ;', 'return x;'), false, 'a space that splits a piece does');
  assert.equal(exactMatch('a+b', 'a + b'), false);
  assert.equal(exactMatch('', '   '), true, 'both empty');
  assert.equal(exactMatch('x', ''), false);
});

test('LCS and InDel distance: hand-computed', () => {
  // kitten / sitting: LCS "ittn" = 4, so InDel = 6 + 7 − 8 = 5 (Levenshtein with substitutions
  // would be 3: the InDel distance counts each substitution as a delete plus an insert).
  assert.equal(lcsLength([...'kitten'], [...'sitting']), 4);
  assert.equal(indelDistance('kitten', 'sitting'), 5);
  assert.equal(indelDistance('', 'abc'), 3);
  assert.equal(indelDistance('abc', 'abc'), 0);
  assert.equal(lcsLength([...'abcbdab'], [...'bdcaba']), 4); // CLRS's example: "bcba"
});

test('edit similarity = 1 − InDel / (|a| + |b|) on trimmed strings (fuzzywuzzy ratio / 100)', () => {
  close(editSimilarity('kitten', 'sitting'), 8 / 13); // fuzz.ratio gives round(61.5) = 62
  close(editSimilarity('abc', 'abc'), 1);
  close(editSimilarity('abc', 'xyz'), 0);
  close(editSimilarity('ab', 'abcd'), 4 / 6);
  close(editSimilarity('  foo(x);', 'foo(x);  '), 1, 'trimmed first');
  close(editSimilarity('', ''), 1);
  close(editSimilarity('', 'x'), 0);
  // Code points, not UTF-16 units: the emoji is one character, as in Python.
  close(editSimilarity('a😀', 'a'), 2 / 3);
});

test('bits per byte: total nats / (ln 2 · bytes)', () => {
  // 4 tokens each at p = 1/2 over 8 bytes: 4 bits / 8 bytes.
  close(bitsPerByte(4 * Math.LN2, 8), 0.5);
  close(bitsPerByte(Math.log(256) * 10, 10), 8); // uniform over bytes = 8 bits per byte
  assert.ok(Number.isNaN(bitsPerByte(1, 0)));
});

test('LineScores: means overall and per group', () => {
  const s = new LineScores();
  s.add('x = 1;', 'x = 1;', 'ts');
  s.add('ab', 'abcd', 'ts');
  s.add('', 'y', 'c');
  const sum = s.summary();
  assert.equal(sum.n, 3);
  close(sum.exact_match, 1 / 3);
  close(sum.edit_similarity, (1 + 4 / 6 + 0) / 3);
  assert.deepEqual(s.groups.get('c'), { n: 1, exact: 0, similarity: 0 });
  assert.equal(s.groups.get('ts')!.n, 2);
});
