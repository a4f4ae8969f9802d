// The copy model (src/ml/copyModel.ts) against a brute-force twin: the longest earlier match of the
// history's end, in the training tokens or earlier in the file, and what followed it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyBucket, CopyCorpus, copyProbability, CopySession, MAX_MATCH, MIN_MATCH, mixCopy, type CopyPrediction } from '../src/ml/copyModel';
import { Rng } from '../src/ml/rng';

const EOT = 9;

/** The slow twin: every position of every source, matched backwards token by token. */
function bruteForce(corpus: number[], history: number[]): CopyPrediction {
  const n = history.length;
  // The query must end with MIN_MATCH tokens of one file.
  for (let i = n - MIN_MATCH; i < n; i++) if (i < 0 || history[i] === EOT) return { length: 0, ids: [], counts: [], total: 0 };
  let best = 0;
  let next: number[] = [];
  const scan = (src: number[], limit: number): void => {
    for (let p = 0; p < limit; p++) {
      let len = 0;
      while (len < MAX_MATCH && p - 1 - len >= 0 && src[p - 1 - len] === history[n - 1 - len] && history[n - 1 - len] !== EOT) len++;
      if (len < MIN_MATCH) continue;
      if (len > best) { best = len; next = []; }
      if (len === best) next.push(src[p]!);
    }
  };
  scan(corpus, corpus.length);
  scan(history, n); // positions whose next token is known: p ≤ n − 1
  const m = new Map<number, number>();
  for (const t of next) m.set(t, (m.get(t) ?? 0) + 1);
  return best === 0 ? { length: 0, ids: [], counts: [], total: 0 } : { length: best, ids: [...m.keys()], counts: [...m.values()], total: next.length };
}

const asMap = (p: CopyPrediction): Map<number, number> => new Map(p.ids.map((id, i) => [id, p.counts[i]!]));

/** Token streams over a small alphabet with copied stretches, so long matches happen. */
function stream(rng: Rng, n: number, eotRate: number): number[] {
  const out: number[] = [];
  while (out.length < n) {
    if (out.length > 20 && rng.next() < 0.3) {
      const from = rng.int(out.length - 10);
      const len = 5 + rng.int(40);
      for (let i = 0; i < len && out.length < n; i++) out.push(out[from + i] ?? rng.int(6));
    } else out.push(rng.next() < eotRate ? EOT : rng.int(6));
  }
  return out;
}

test('predict equals the brute-force twin: longest match in the corpus or earlier in the file, its continuations counted', () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 40; trial++) {
    const corpus = stream(rng, 400 + rng.int(400), 0.01);
    const doc = [EOT, ...stream(rng, 60 + rng.int(200), 0.0)];
    const s = new CopySession(new CopyCorpus(Uint16Array.from(corpus), EOT), EOT);
    for (let i = 0; i < doc.length; i++) {
      s.push(doc[i]!);
      const got = s.predict();
      const want = bruteForce(corpus, doc.slice(0, i + 1));
      assert.equal(got.length, want.length, `trial ${trial} at ${i}`);
      assert.deepEqual(asMap(got), asMap(want), `trial ${trial} at ${i}`);
      assert.equal(got.total, want.total);
    }
  }
});

test('a match never spans an end of file, in the corpus or in the history', () => {
  const K = MIN_MATCH;
  const run = (t: number, n: number): number[] => Array.from({ length: n }, () => t);
  // Corpus: "1 2 … K EOT 7×K 8". A history "EOT 1 … K EOT 7×(K−1)" has only K−1 tokens in its file.
  const corpus = Uint16Array.from([...Array.from({ length: K }, (_, i) => i + 1), EOT, ...run(7, K), 8]);
  const s = new CopySession(new CopyCorpus(corpus, EOT), EOT);
  for (const t of [EOT, ...Array.from({ length: K }, (_, i) => i + 1), EOT, ...run(7, K - 1)]) s.push(t);
  assert.equal(s.predict().length, 0);
  s.push(7); // now K 7s: the corpus's K 7s match (not further back: an eot), followed by 8
  const p = s.predict();
  assert.equal(p.length, K);
  assert.deepEqual(asMap(p), new Map([[8, 1]]));
  // Without a corpus, the file's own earlier runs: K 7s have no earlier position with K 7s before it.
  const alone = new CopySession(null, EOT);
  for (const t of [EOT, ...run(7, K)]) alone.push(t);
  assert.equal(alone.predict().length, 0);
  alone.push(7);
  assert.deepEqual(asMap(alone.predict()), new Map([[7, 1]]));
});

test('pop undoes push (the beam search rewinds)', () => {
  const rng = new Rng(6);
  const corpus = stream(rng, 600, 0.01);
  const c = new CopyCorpus(Uint16Array.from(corpus), EOT);
  const doc = [EOT, ...stream(rng, 150, 0)];
  const a = new CopySession(c, EOT);
  for (const t of doc) a.push(t);
  const before = a.predict();
  const extra = stream(rng, 30, 0);
  for (const t of extra) a.push(t);
  for (let i = 0; i < extra.length; i++) a.pop();
  assert.deepEqual(asMap(a.predict()), asMap(before));
  assert.equal(a.predict().length, before.length);
  // And it keeps working as if the extra tokens never came.
  const b = new CopySession(c, EOT);
  for (const t of doc) b.push(t);
  for (const t of [1, 2, 3, 4, 5, 0, 1, 2]) { a.push(t); b.push(t); assert.deepEqual(asMap(a.predict()), asMap(b.predict())); }
});

test('mixCopy: p = μ·p_copy + (1−μ)·p, a distribution; buckets by match length', () => {
  const logp = Float64Array.from([0.5, 0.3, 0.2].map(Math.log));
  const pred: CopyPrediction = { length: 12, ids: [2, 0], counts: [3, 1], total: 4 };
  mixCopy(logp, pred, 0.6);
  const p = Array.from(logp, Math.exp);
  assert.ok(Math.abs(p[0]! - (0.6 * 0.25 + 0.4 * 0.5)) < 1e-12);
  assert.ok(Math.abs(p[1]! - 0.4 * 0.3) < 1e-12);
  assert.ok(Math.abs(p[2]! - (0.6 * 0.75 + 0.4 * 0.2)) < 1e-12);
  assert.ok(Math.abs(p.reduce((s, x) => s + x, 0) - 1) < 1e-12);
  assert.equal(copyProbability(pred, 2), 0.75);
  assert.equal(copyProbability(pred, 1), 0);
  // No prediction: unchanged.
  const same = Float64Array.from([-1, -2]);
  mixCopy(same, { length: 0, ids: [], counts: [], total: 0 }, 0.9);
  assert.deepEqual(Array.from(same), [-1, -2]);
  assert.deepEqual([0, MIN_MATCH - 1, MIN_MATCH, 11, 12, 23, 24, 47, 48, 96].map(copyBucket), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
});

test('the document\'s own training copy is left out (it holds the text below the cursor), other files are not', () => {
  // Files a, b, c; b's text also appears in c, with a different continuation.
  const a = [1, 2, 3, 4, 5, 6], b = [7, 1, 2, 3, 4, 8, 0], c = [5, 1, 2, 3, 4, 6, 0];
  const corpus = new CopyCorpus(Uint16Array.from([...a, EOT, ...b, EOT, ...c, EOT]), EOT);
  corpus.setFilePaths(['src/a.ts', 'src/b.ts', 'lib/c.ts']);
  const session = new CopySession(corpus, EOT);
  for (const t of [EOT, 7, 1, 2, 3, 4]) session.push(t); // editing b: "7 1 2 3 4" typed so far
  // Not told which document: b's own copy matches longest (5 tokens) and says 8.
  assert.deepEqual(asMap(session.predict()), new Map([[8, 1]]));
  assert.equal(session.predict().length, 5);
  // Told (as an absolute path ending in the training path, or the training path itself): the
  // 4-token matches in a (→ 5) and c (→ 6) remain.
  for (const p of ['/home/me/proj/src/b.ts', 'src/b.ts', 'C:\\proj\\src\\b.ts']) {
    session.setDocument(p);
    assert.deepEqual(asMap(session.predict()), new Map([[5, 1], [6, 1]]), p);
    assert.equal(session.predict().length, 4);
  }
  // Another document, or an unknown one: nothing left out.
  session.setDocument('/home/me/proj/other/b.ts');
  assert.deepEqual(asMap(session.predict()), new Map([[8, 1]]));
  session.setDocument(null);
  assert.deepEqual(asMap(session.predict()), new Map([[8, 1]]));
  // Paths that do not fit the stream (a different number of files) are ignored.
  const wrong = new CopyCorpus(Uint16Array.from([...a, EOT, ...b, EOT]), EOT);
  wrong.setFilePaths(['only-one.ts']);
  assert.equal(wrong.spanOf('only-one.ts'), null);
});
