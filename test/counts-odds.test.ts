// The mixture loss's inputs: the counts' odds of every training token (ml/countsOdds.ts) must be
// those a file the count models never saw would get, and the batch loader must hand each target
// the odds of the token it is, in plain and fill-in-the-middle windows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countsOdds, fileSpans } from '../src/ml/countsOdds';
import { BatchLoader } from '../src/ml/dataset';
import { Rng } from '../src/ml/rng';

const V = 64;
const EOT = 63;

/** Files joined by eot, as in train.bin. */
function stream(files: number[][]): Uint16Array {
  return Uint16Array.from(files.flatMap((f) => [...f, EOT]));
}

const randomFile = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.int(EOT));

test('fileSpans: each file up to its eot; a stream without a final eot ends a last file', () => {
  assert.deepEqual(fileSpans([1, 2, EOT, 3, EOT], EOT), [[0, 2], [3, 4]]);
  assert.deepEqual(fileSpans([1, 2, EOT, 3], EOT), [[0, 2], [3, 4]]);
  assert.deepEqual(fileSpans([EOT, 5, EOT], EOT), [[0, 0], [1, 2]]);
});

test('countsOdds: a file is scored as unseen — its own text neither counts in its n-gram model nor is copied from its own span', () => {
  const rng = new Rng(4);
  // Ten files of random text; file 7 recurs verbatim as file 9 (another fold: 9 % 5 ≠ 7 % 5).
  const files = Array.from({ length: 10 }, () => randomFile(rng, 400));
  files[9] = files[7]!.slice();
  const tokens = stream(files);
  const { odds, stats } = countsOdds(tokens, { vocabSize: V, eotId: EOT, order: 4, folds: 5, gptShare: 0.5 });
  assert.equal(odds.length, tokens.length);
  assert.equal(stats.files, 10);
  const spans = fileSpans(tokens, EOT);
  const meanOdds = (f: number): number => {
    const [s, e] = spans[f]!;
    let sum = 0;
    for (let i = s + 8; i < e; i++) sum += odds[i]!;
    return sum / (e - s - 8);
  };
  // Random text over 63 symbols: from the others' counts, ~1/63 per token, so odds ≈ 1/63
  // (λ = 0.5). Had the file's own n-grams or its own span been used, every 4-gram would be
  // predicted with certainty and the odds would be ≫ 1.
  for (const f of [0, 1, 2, 3, 4, 5, 6, 8]) assert.ok(meanOdds(f) < 0.1, `file ${f}: mean odds ${meanOdds(f)} — its own text leaked into its counts`);
  // The twin files copy each other: the copy model predicts them almost surely.
  for (const f of [7, 9]) assert.ok(meanOdds(f) > 5, `file ${f}: mean odds ${meanOdds(f)} — the copy of another training file was not found`);
  for (const x of odds) assert.ok(Number.isFinite(x) && x >= 0);
});

test('countsOdds: a file repeating its own earlier text is predicted from its past (the cache and copy history, as served)', () => {
  const rng = new Rng(5);
  // Enough repeated tokens (> MIXTURE_FIT.minBucketTokens) for the copy model's weight to be fitted.
  const part = randomFile(rng, 200);
  const files = [...Array.from({ length: 6 }, () => randomFile(rng, 300)), [...part, ...part, ...part]];
  const tokens = stream(files);
  const { odds } = countsOdds(tokens, { vocabSize: V, eotId: EOT, order: 4, folds: 3 });
  const [s] = fileSpans(tokens, EOT)[6]!;
  const mean = (a: number, b: number): number => { let x = 0; for (let i = a; i < b; i++) x += odds[i]!; return x / (b - a); };
  assert.ok(mean(s + 10, s + 200) < 0.1, `first half: ${mean(s + 10, s + 200)}`);
  assert.ok(mean(s + 210, s + 600) > 5, `the repeats: ${mean(s + 210, s + 600)}`);
});

const FP = 60, FS = 61, FM = 62;
const tokenizer = { eotId: EOT, specialId: (t: string): number => ({ '<|fim_prefix|>': FP, '<|fim_middle|>': FM, '<|fim_suffix|>': FS } as Record<string, number>)[t]! };

test('batch loader: every target gets the odds of the token it is — plain and FIM windows; sentinels, the stop eot and SPM suffixes get 0', () => {
  const rng = new Rng(6);
  const tokens = stream(Array.from({ length: 40 }, () => randomFile(rng, 5 + rng.int(60)).map((t) => t % FP)));
  // odds[i] = i + 1: a target's odds say which stream position it was taken from.
  const odds = Float32Array.from({ length: tokens.length }, (_, i) => i + 1);
  const B = 4, T = 32;
  for (const fimRate of [0, 0.5]) {
    const loader = new BatchLoader(tokens, B, T, 11, { fimRate, tokenizer }, odds);
    assert.equal(loader.hasOdds, true);
    const ids = new Int32Array(B * T), targets = new Int32Array(B * T), out = new Float32Array(B * T);
    let fromStream = 0, withoutOdds = 0, sentinelTargets = 0;
    for (let step = 0; step < 50; step++) {
      loader.next(ids, targets, out);
      for (let k = 0; k < B * T; k++) {
        if (targets[k]! < 0) {
          sentinelTargets++;
          assert.equal(out[k], 0, 'a target without loss has no odds');
          continue;
        }
        if (out[k] === 0) { withoutOdds++; continue; }
        assert.equal(tokens[out[k]! - 1], targets[k], `target ${k}: odds from stream position ${out[k]! - 1}, which holds another token`);
        fromStream++;
      }
    }
    assert.ok(fromStream > 0);
    if (fimRate === 0) assert.equal(withoutOdds + sentinelTargets, 0, 'plain windows: every target has its odds');
    else assert.ok(withoutOdds > 0 && sentinelTargets > 0, 'FIM windows: suffix tokens and the stop eot train as plain cross-entropy');
  }
  // Without odds the loader fills none; a loader given odds of the wrong length is an error.
  const plain = new BatchLoader(tokens, B, T, 11);
  assert.equal(plain.hasOdds, false);
  assert.throws(() => new BatchLoader(tokens, B, T, 11, undefined, new Float32Array(3)), /odds/);
});
