// The Kneser-Ney baseline: exact normalisation, a small example worked out by hand, the cache,
// and the model's size and per-query work at the size of a real run's train.bin (its speed
// there: npm run bench:ngram).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KneserNey, modifiedKneserNeyDiscounts, NgramSession, TokenCache, tuneCache } from '../src/ml/ngram';
import { Rng } from '../src/ml/rng';

const close = (a: number, b: number, eps: number, why = ''): void => assert.ok(Math.abs(a - b) <= eps, `${a} vs ${b} ${why}`);
const sum = (xs: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s;
};

/** A stream with structure at several orders: a noisy Markov chain over V ids, files ended by eot. */
function markovStream(n: number, V: number, seed: number): Uint16Array {
  const rng = new Rng(seed);
  const eot = V - 1;
  const t = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.002) t[i] = eot;
    else if (i >= 2 && r < 0.6) t[i] = (t[i - 1]! * 7 + t[i - 2]! * 3 + 1) % (V - 1);
    else t[i] = Math.floor(rng.next() ** 3 * (V - 1));
  }
  return t;
}

test('discounts: Chen & Goodman\'s estimates from counts of counts (hand-computed)', () => {
  // n = (10, 5, 3, 2): Y = 10/20 = 0.5; D1 = 1 − 2·0.5·5/10 = 0.5; D2 = 2 − 3·0.5·3/5 = 1.1;
  // D3+ = 3 − 4·0.5·2/3 = 5/3.
  const [d1, d2, d3] = modifiedKneserNeyDiscounts(10, 5, 3, 2);
  close(d1, 0.5, 1e-12); close(d2, 1.1, 1e-12); close(d3, 5 / 3, 1e-12);
  // No counts of 3 or 4: D3+ is 0/0 and falls back to 1.5; D2 = 2 (all mass of twice-seen n-grams).
  assert.deepEqual(modifiedKneserNeyDiscounts(3, 1, 0, 0).map((d) => Math.round(d * 1e12) / 1e12), [0.6, 2, 1.5]);
});

test('a bigram model worked out by hand', () => {
  // Ids a=0 b=1 c=2 eot=3; the stream "a b a b a c eot", with a virtual eot before it.
  // Bigram (raw) counts: eot→a 1, a→b 2, b→a 2, a→c 1, c→eot 1: n1 = 3, n2 = 2 → Y = 3/7,
  //   D1 = 1 − 2·(3/7)·(2/3) = 3/7, D2 = 2 − 0 = 2.
  // Unigram level uses continuation counts (distinct left neighbours): a 2 (eot, b), b 1, c 1,
  //   eot 1; total 5; n1 = 3, n2 = 1 → Y = 0.6, D1 = 0.6, D2 = 2; γ = (3·0.6 + 1·2)/5 = 0.76.
  //   p1(a) = (2 − 2)/5 + 0.76/4 = 0.19; p1(b) = p1(c) = p1(eot) = (1 − 0.6)/5 + 0.19 = 0.27.
  // After "a" (followers b:2, c:1, total 3): γ(a) = (3/7·1 + 2·1)/3 = 17/21.
  //   p(b | a) = (2 − 2)/3 + 17/21·0.27 = 0.2185714…;  p(c | a) = (1 − 3/7)/3 + 17/21·0.27 = 0.4090476…
  const kn = KneserNey.train(Uint16Array.from([0, 1, 0, 1, 0, 2, 3]), { order: 2, vocabSize: 4, eotId: 3 });
  close(kn.discounts[1]![0], 3 / 7, 1e-12);
  close(kn.discounts[0]![0], 0.6, 1e-12);
  close(kn.prob([], 0), 0.19, 1e-12);
  close(kn.prob([], 1), 0.27, 1e-12);
  close(kn.prob([0], 1), (17 / 21) * 0.27, 1e-12);
  close(kn.prob([0], 2), 4 / 21 + (17 / 21) * 0.27, 1e-12);
  close(kn.prob([1], 0), (2 - 2) / 2 + ((2 * 1) / 2) * 0.19, 1e-12, 'after b: only a, twice; γ = 1');
  // After c (seen once, before eot): a never followed it, so only the back-off mass γ = D1·1/1 = 3/7.
  close(kn.prob([2, 2], 0), (3 / 7) * 0.19, 1e-12, 'only the last token of the context matters at order 2');
  close(kn.logProb([0], 1), Math.log((17 / 21) * 0.27), 1e-12);
});

test('histories stop at a file boundary: what came before an eot does not matter after it', () => {
  const V = 50, eot = V - 1;
  const kn = KneserNey.train(markovStream(20_000, V, 13), { order: 4, vocabSize: V, eotId: eot });
  for (const w of [0, 3, 17, eot]) {
    close(kn.prob([5, 9, eot], w), kn.prob([eot], w), 1e-15);
    close(kn.prob([1, 2, 3, eot, 7], w), kn.prob([eot, 7], w), 1e-15);
  }
  // …while inside a file the longer history does matter.
  const t = markovStream(20_000, V, 13);
  let differs = 0;
  for (let i = 3; i < 200; i++) if (Math.abs(kn.prob(t, t[i]!, i) - kn.prob([t[i - 1]!], t[i]!)) > 1e-6) differs++;
  assert.ok(differs > 100);
});

test('the next-token distribution sums to 1 over the vocabulary (within 1e-9) for every order and context', () => {
  const V = 300;
  const tokens = markovStream(60_000, V, 7);
  const rng = new Rng(11);
  for (const order of [3, 4, 5, 6]) {
    const kn = KneserNey.train(tokens, { order, vocabSize: V, eotId: V - 1 });
    const contexts: number[][] = [
      [], [V - 1], [V - 1, 5], [1, 2, 3, 4, 5, 6, 7], [299, 298, 297], // empty, file start, unseen ids
      Array.from(tokens.subarray(1000, 1010)), Array.from(tokens.subarray(5000, 5003)),
    ];
    for (let k = 0; k < 20; k++) contexts.push(Array.from({ length: 1 + rng.int(8) }, () => rng.int(V)));
    for (const ctx of contexts) {
      const d = kn.distribution(ctx);
      close(sum(d), 1, 1e-9, `order ${order} context ${ctx.join(',')}`);
      for (const w of [0, 1, ctx[ctx.length - 1] ?? 2, V - 1, rng.int(V)]) close(kn.prob(ctx, w), d[w]!, 1e-12, 'prob() agrees with distribution()');
      for (let w = 0; w < V; w++) assert.ok(d[w]! > 0, 'every id has some probability');
    }
  }
});

test('with the cache (and mixed with a network) the distribution still sums to 1', () => {
  const V = 200;
  const kn = KneserNey.train(markovStream(20_000, V, 3), { order: 4, vocabSize: V, eotId: V - 1 });
  const s = new NgramSession(kn, { weight: 0.3, concentration: 2, capacity: 50 });
  const history = [V - 1, ...Array.from(markovStream(300, V, 9)).filter((t) => t !== V - 1)];
  for (const t of history) s.push(t); // 300 tokens through a 50-token cache: evictions happen
  const p = s.distribution();
  assert.equal(s.cache.size, 50);
  close(sum(Array.from(p)), 1, 1e-9);
  for (const w of [0, 5, history[history.length - 1]!]) close(p[w]!, s.prob(w), 1e-12);
});

test('the cache raises the probability of a file\'s own repeated tokens; tuning gives it weight on such data', () => {
  const V = 500;
  const eot = V - 1;
  const train = markovStream(50_000, V, 5);
  const kn = KneserNey.train(train, { order: 4, vocabSize: V, eotId: eot });
  // A "file" that keeps using an identifier (id 400) the training data almost never shows.
  const file = [eot];
  const rng = new Rng(2);
  for (let i = 0; i < 400; i++) file.push(i % 10 === 0 ? 400 : rng.int(300));
  const cached = new NgramSession(kn, { weight: 0.2, concentration: 1, capacity: 4096 });
  const plain = new NgramSession(kn, { weight: 0, concentration: 1, capacity: 4096 });
  const at = file.length - 10; // the last occurrence's position
  assert.equal(file[at], 400);
  for (const t of file.slice(0, at)) { cached.push(t); plain.push(t); }
  assert.ok(cached.prob(400) > 10 * plain.prob(400), `cache ${cached.prob(400)} vs none ${plain.prob(400)}`);
  // An eot starts a new file: the cache forgets.
  cached.push(eot);
  assert.equal(cached.cache.size, 0);
  // Held-out files like that one: the tuned weight is positive and the loss below no cache.
  const heldOut: number[] = [];
  for (let f = 0; f < 5; f++) {
    const id = 300 + f * 20;
    for (let i = 0; i < 300; i++) heldOut.push(i % 8 === 0 ? id : rng.int(300));
    heldOut.push(eot);
  }
  const tuned = tuneCache(kn, heldOut);
  assert.ok(tuned.params.weight > 0, `weight ${tuned.params.weight}`);
  assert.ok(tuned.nats < tuned.natsWithoutCache, `${tuned.nats} < ${tuned.natsWithoutCache}`);
  // The TokenCache alone is a distribution.
  const c = new TokenCache(10, 8, 1);
  for (const t of [1, 2, 1, 2, 3]) c.push(t);
  // After 2 the cache saw 1 once and 3 once; 1 is 2 of the 5 tokens: (1 + 1·2/5) / (2 + 1).
  close(c.prob(2, 1), 1.4 / 3, 1e-12);
  close(c.prob(2, 3), (1 + 1 / 5) / 3, 1e-12);
  close(c.prob(2, 7), 0, 1e-15);
  const d = new Float64Array(10);
  c.addDistribution(2, 1, d);
  close(sum(d), 1, 1e-12);
});

test('the most likely next token follows the repeated path', () => {
  // "x = 1 ;" repeated: after "x =" the model must continue "1 ;".
  const V = 10, eot = 9;
  const file: number[] = [];
  for (let i = 0; i < 50; i++) file.push(1, 2, 3, 4);
  const kn = KneserNey.train(Uint16Array.from([...file, eot]), { order: 3, vocabSize: V, eotId: eot });
  const s = new NgramSession(kn);
  for (const t of [eot, 1, 2]) s.push(t);
  const path: number[] = [];
  for (let i = 0; i < 4; i++) {
    const p = s.distribution();
    const best = p.indexOf(Math.max(...p));
    path.push(best);
    s.push(best);
  }
  assert.deepEqual(path, [3, 4, 1, 2]);
});

/** How many distinct values `keys[0..n)` holds (sorts them in place). */
function distinct(keys: Float64Array, n: number): number {
  const a = keys.subarray(0, n).sort();
  let count = 0;
  for (let i = 0; i < n; i++) if (i === 0 || a[i] !== a[i - 1]) count++;
  return count;
}

/**
 * The histories the model must hold, counted independently of its trie: for every position the
 * last 1..order−1 tokens, read backwards and ending at the first eot (the virtual eot before the
 * stream included), as exact integers in base V+1; and the n-grams (history, next token), the
 * empty history included. Returns the distinct counts and each position's history length.
 */
function referenceCounts(tokens: Uint16Array, V: number, order: number, eot: number): { histories: number; ngrams: number; depth: Uint8Array } {
  const N = tokens.length;
  const hist = new Float64Array(N * (order - 1));
  const grams = new Float64Array(N * order);
  const depth = new Uint8Array(N);
  let nh = 0, ng = 0;
  for (let i = 0; i < N; i++) {
    const w = tokens[i]!;
    grams[ng++] = w; // the empty history
    let key = 0;
    for (let d = 1; d < order; d++) {
      const x = i - d >= 0 ? tokens[i - d]! : eot;
      key = key * (V + 1) + x + 1;
      hist[nh++] = key;
      grams[ng++] = key * V + w;
      depth[i] = d;
      if (x === eot) break;
    }
  }
  return { histories: distinct(hist, nh), ngrams: distinct(grams, ng), depth };
}

test('at the size of a real run (1.5M tokens, V = 8000): one node per distinct history, one entry per distinct n-gram, bounded work per query, and it learns', () => {
  // Speed at this size is measured by `npm run bench:ngram`; here, what bounds the work.
  const V = 8000, order = 4, eot = V - 1;
  const tokens = markovStream(1_500_000, V, 1);
  const kn = KneserNey.train(tokens, { order, vocabSize: V, eotId: eot });
  const ref = referenceCounts(tokens, V, order, eot);
  // Training is one trie walk of at most order−1 steps per token; the model is as small as the
  // data allows: exactly the distinct histories (+ the root) and n-grams, linear in the tokens.
  assert.equal(kn.stats.tokens, tokens.length);
  assert.equal(kn.stats.nodes, ref.histories + 1, 'history nodes');
  assert.equal(kn.stats.ngrams, ref.ngrams, 'stored n-grams');
  assert.ok(kn.stats.nodes <= tokens.length * (order - 1) + 1 && kn.stats.ngrams <= tokens.length * order);
  assert.ok(ref.histories > 1_000_000, `${ref.histories} histories: too few to exercise the tables at scale`);
  // A query visits the history nodes of one path: matchedDepth + 1 of them, never more than
  // `order`, and on training text every history is found, up to the file start.
  let nats = 0;
  for (let i = 10; i < 100_010; i++) {
    nats -= kn.logProb(tokens, tokens[i]!, i);
    const k = kn.matchedDepth(tokens, i);
    if (k !== ref.depth[i]) assert.fail(`position ${i}: matched ${k} history tokens, expected ${ref.depth[i]}`);
  }
  assert.ok(Number.isFinite(nats) && nats / 100_000 < Math.log(V) - 2, `it learned the chain: ${nats / 100_000} nats/token`);
  // Normalised at this size too, and prob() agrees with distribution().
  const dist = new Float64Array(V);
  for (const i of [1, 777, 123_456, 1_499_999]) {
    kn.distribution(tokens, dist, i);
    close(sum(dist), 1, 1e-9, `sum at ${i}`);
    for (const v of [0, tokens[i]!, eot, V - 2]) close(kn.prob(tokens, v, i), dist[v]!, 1e-12, `p(${v}) at ${i}`);
  }
});

test('pop undoes push exactly, also across cache evictions (the beam search\'s rewind)', () => {
  const V = 60;
  const kn = KneserNey.train(markovStream(5_000, V, 11), { order: 4, vocabSize: V, eotId: V - 1 });
  const rng = new Rng(12);
  const params = { weight: 0.3, concentration: 1, capacity: 16 };
  for (let trial = 0; trial < 20; trial++) {
    const history = [V - 1, ...Array.from({ length: 5 + rng.int(40) }, () => rng.int(V - 1))];
    const s = new NgramSession(kn, params);
    for (const id of history) s.push(id);
    const before = Float64Array.from(s.distribution());
    const extra = Array.from({ length: 1 + rng.int(30) }, () => rng.int(V - 1));
    for (const id of extra) s.push(id);
    for (let i = 0; i < extra.length; i++) s.pop();
    const after = s.distribution();
    // The slow twin: a fresh session told only the history.
    const fresh = new NgramSession(kn, params);
    for (const id of history) fresh.push(id);
    const ref = fresh.distribution();
    for (let v = 0; v < V; v++) {
      close(after[v]!, ref[v]!, 1e-12, `trial ${trial} id ${v}`);
      close(after[v]!, before[v]!, 1e-12);
    }
    assert.equal(s.cache.size, fresh.cache.size);
    assert.equal(s.bucket(), fresh.bucket());
  }
  const s = new NgramSession(kn, params);
  s.push(V - 1);
  assert.throws(() => s.pop(), /nothing to undo/);
});
