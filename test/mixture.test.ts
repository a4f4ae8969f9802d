// The GPT + n-gram mixture (src/ml/mixture.ts): EM recovers known weights, matches a brute-force
// search, and the mixing arithmetic is exact; the n-gram's matched depth (the bucket) by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitMixtureWeights, mixLogits, MixtureWeights, splitDocuments } from '../src/ml/mixture';
import { KneserNey, mixtureBucket, mixtureBuckets, NgramSession } from '../src/ml/ngram';
import { ServedModel, ServedParts } from '../src/ml/servedModel';
import { BpeTokenizer } from '../src/ml/bpe';
import { CompletionEngine, CompletionModel } from '../src/completion/engine';
import { DEFAULT_COMPLETION_SETTINGS } from '../src/ml/config';
import { capTokens } from '../src/ml/ngram';
import { Rng } from '../src/ml/rng';

/** Fixed weights, as a fit would report them. */
const weights = (w: number[]): MixtureWeights => ({ weights: w, counts: w.map(() => 0), nats: { gpt: 0, ngram: 0, mixture: 0 } });

/** A CompletionModel of stand-in parts, serving them in 'served' mode (context 64). */
function standIn(tok: BpeTokenizer, parts: ServedParts): CompletionModel {
  const model = new ServedModel(parts, { mode: 'served' });
  return { step: 1, contextLength: 64, tokenizer: tok, decoder: () => model };
}

const close = (a: number, b: number, eps: number, why = ''): void => assert.ok(Math.abs(a - b) <= eps, `${a} vs ${b} ${why}`);

/** Two fixed "models" over V ids per bucket, and tokens drawn from their true mixture λ_b. */
function mixtureData(lambdas: number[], perBucket: number, seed: number): { pg: Float64Array; pn: Float64Array; b: Uint8Array } {
  const V = 12;
  const rng = new Rng(seed);
  const dist = (): Float64Array => {
    const d = Float64Array.from({ length: V }, () => rng.next() ** 4 + 1e-3);
    const z = d.reduce((s, x) => s + x, 0);
    return d.map((x) => x / z);
  };
  const N = lambdas.length * perBucket;
  const pg = new Float64Array(N), pn = new Float64Array(N), b = new Uint8Array(N);
  let i = 0;
  lambdas.forEach((lam, bucket) => {
    const g = dist(), n = dist();
    for (let k = 0; k < perBucket; k++, i++) {
      // Draw the source model, then the token from it.
      const src = rng.next() < lam ? g : n;
      let u = rng.next(), w = 0;
      while (w < V - 1 && u >= src[w]!) u -= src[w++]!;
      pg[i] = g[w]!; pn[i] = n[w]!; b[i] = bucket;
    }
  });
  return { pg, pn, b };
}

test('EM recovers the weights the data were drawn with, per bucket', () => {
  const truth = [0.2, 0.5, 0.8, 0.9];
  const { pg, pn, b } = mixtureData(truth, 20_000, 1);
  const fit = fitMixtureWeights(pg, pn, b, truth.length);
  truth.forEach((lam, k) => close(fit.weights[k]!, lam, 0.05, `bucket ${k}`));
  assert.deepEqual(fit.counts, [20_000, 20_000, 20_000, 20_000]);
  assert.ok(fit.nats.mixture < fit.nats.gpt && fit.nats.mixture < fit.nats.ngram);
});

test('EM finds the loss minimum of a brute-force grid search (the slow twin), and a sparse bucket uses the pooled weight', () => {
  const { pg, pn, b } = mixtureData([0.35, 0.65], 3_000, 2);
  // A third bucket with too few tokens to fit on its own.
  const n = pg.length;
  const pg2 = Float64Array.from([...pg, 0.5, 0.1, 0.2]), pn2 = Float64Array.from([...pn, 0.1, 0.5, 0.2]), b2 = Uint8Array.from([...b, 2, 2, 2]);
  const fit = fitMixtureWeights(pg2, pn2, b2, 3);
  const loss = (bucket: number, lam: number): number => {
    let s = 0;
    for (let i = 0; i < n; i++) if (b[i] === bucket) s -= Math.log(lam * pg[i]! + (1 - lam) * pn[i]!);
    return s;
  };
  for (const bucket of [0, 1]) {
    let best = 0.5, bestLoss = Infinity;
    for (let lam = 0.02; lam <= 0.98 + 1e-9; lam += 0.001) {
      const l = loss(bucket, lam);
      if (l < bestLoss) { bestLoss = l; best = lam; }
    }
    close(fit.weights[bucket]!, best, 0.003, `bucket ${bucket}`);
    assert.ok(loss(bucket, fit.weights[bucket]!) <= bestLoss + 1e-6);
  }
  // Pooled: the EM optimum over every token with one weight.
  const pooled = fitMixtureWeights(pg2, pn2, new Uint8Array(pg2.length), 1).weights[0]!;
  close(fit.weights[2]!, pooled, 1e-9);
});

test('mixLogits: ln(λ·softmax(logits) + (1−λ)·p), a distribution', () => {
  const logits = Float32Array.from([2, -1, 0.5, 3]);
  const p = Float64Array.from([0.1, 0.6, 0.2, 0.1]);
  const out = mixLogits(logits, p, 0.3, new Float64Array(4));
  const z = [...logits].reduce((s, x) => s + Math.exp(x), 0);
  for (let v = 0; v < 4; v++) close(Math.exp(out[v]!), (0.3 * Math.exp(logits[v]!)) / z + 0.7 * p[v]!, 1e-12);
  close([...out].reduce((s, x) => s + Math.exp(x), 0), 1, 1e-12);
  // λ = 1 is the network alone (log-softmax), λ = 0 the n-gram alone.
  close(mixLogits(logits, p, 1, new Float64Array(4))[3]!, 3 - Math.log(z), 1e-12);
  close(mixLogits(logits, p, 0, new Float64Array(4))[1]!, Math.log(0.6), 1e-12);
});

test('matched depth: how much of the history the n-gram model saw (the mixture bucket), by hand', () => {
  // Ids a=0 b=1 c=2 eot=3; stream "a b a b a c eot". Histories seen: "a", "b", "c" and the
  // pairs "a b", "b a", "a c", "eot a"; at order 3 the depth is at most 2.
  const kn = KneserNey.train(Uint16Array.from([0, 1, 0, 1, 0, 2, 3]), { order: 3, vocabSize: 4, eotId: 3 });
  assert.equal(kn.matchedDepth([]), 0);
  assert.equal(kn.matchedDepth([0]), 1); // "a" seen as a history
  assert.equal(kn.matchedDepth([1, 0]), 2); // "b a" seen
  assert.equal(kn.matchedDepth([2, 0]), 1); // "c a" never: back to "a"
  assert.equal(kn.matchedDepth([3]), 1); // the start of a file ("eot") is a history
  assert.equal(kn.matchedDepth([0, 3]), 1, 'a history never reaches back across an eot');
  const s = new NgramSession(kn);
  for (const t of [3, 0, 1]) s.push(t);
  // "a b" seen (depth 2); after it always "a" at order 3, but smoothing leaves the top below 0.8.
  const top = Math.max(...s.distribution());
  assert.equal(s.bucket(), mixtureBucket(2, top));
  assert.equal(mixtureBucket(2, top), 2 * 4 + (top >= 0.8 ? 3 : top >= 0.5 ? 2 : top >= 0.2 ? 1 : 0));
  // The levels: [0, 0.2) [0.2, 0.5) [0.5, 0.8) [0.8, 1].
  assert.deepEqual([0.1, 0.2, 0.49, 0.5, 0.79, 0.8, 1].map((p) => mixtureBucket(0, p)), [0, 1, 1, 2, 2, 3, 3]);
  assert.equal(mixtureBucket(3, 0.9), 15);
  assert.equal(mixtureBuckets(4), 16);
});

test('splitDocuments: files between eots, each as [eot, …file, eot]', () => {
  assert.deepEqual(splitDocuments([5, 6, 9, 9, 7, 9, 8], 9), [[9, 5, 6, 9], [9, 7, 9], [9, 8, 9]]);
  assert.deepEqual(splitDocuments([], 9), []);
});

test('the completion engine decodes the mixture: the GPT\'s share decides, the n-gram sees the prefix and the generated tokens', async () => {
  const tok = BpeTokenizer.train([new TextEncoder().encode('foo bar baz qux\n'.repeat(100))], { vocabSize: 300 });
  const one = (s: string): number => {
    const ids = Array.from(tok.encode(s));
    assert.equal(ids.length, 1, `${JSON.stringify(s)} is one token`);
    return ids[0]!;
  };
  const [foo, bar, baz, nl] = [one('foo'), one(' bar'), one(' baz'), one('\n')];
  const V = tok.vocabSize;
  // The "GPT": sure of " bar" after the prompt, then of a newline.
  let steps = 0;
  const peak = (id: number): Float32Array => Float32Array.from({ length: V }, (_, v) => (v === id ? 20 : 0));
  const session = { commonPrefix: () => 0, prime: () => { steps = 0; return peak(bar); }, append: () => { steps++; return peak(nl); } };
  // The "n-gram": 90% " baz" first, then a newline; it records what it is told.
  const pushed: number[] = [];
  const ngramPart = {
    reset: () => { pushed.length = 0; },
    push: (id: number) => { pushed.push(id); },
    pop: () => { pushed.pop(); },
    distribution: () => Float64Array.from({ length: V }, (_, v) => (v === (pushed[pushed.length - 1] === baz ? nl : baz) ? 0.9 : 0.1 / (V - 1))),
    bucket: () => 0,
  };
  const settings = { ...DEFAULT_COMPLETION_SETTINGS, mode: 'line' as const, temperature: 0, minMeanLogProb: -Infinity };
  const complete = async (lambda: number): Promise<string> => {
    const model = standIn(tok, { gpt: session, ngram: ngramPart, copy: null, weights: { mixture: weights([lambda]), copy: weights([0]), copyOverNgram: weights([0]) }, vocabSize: V });
    const engine = new CompletionEngine(() => model, settings, { useCache: false, reuseSuggestions: false });
    return (await engine.complete({ uri: 'u', text: 'foo ', offset: 4 }, () => false)).text;
  };
  // λ = 0.9: p(" bar") ≈ 0.9 vs p(" baz") ≈ 0.09. λ = 0.05: 0.05 vs 0.855.
  assert.equal(await complete(0.9), 'bar');
  assert.equal(await complete(0.05), 'baz');
  // The n-gram saw the file start, the prompt without the healed trailing space, then " baz".
  assert.deepEqual(pushed, [tok.eotId, foo, baz]);
  assert.ok(steps >= 1);
});

test('beam search returns the most probable whole line where greedy decoding takes the locally best token', async () => {
  const tok = BpeTokenizer.train([new TextEncoder().encode('foo bar baz qux\n'.repeat(100))], { vocabSize: 300 });
  const id = (s: string): number => Array.from(tok.encode(s))[0]!;
  const [bar, baz, qux, nl] = [id(' bar'), id(' baz'), id(' qux'), id('\n')];
  const V = tok.vocabSize;
  const logits = (probs: Record<number, number>): Float32Array => {
    const rest = (1 - Object.values(probs).reduce((s, p) => s + p, 0)) / (V - Object.keys(probs).length);
    return Float32Array.from({ length: V }, (_, v) => Math.log(probs[v] ?? rest));
  };
  // After the prompt: " bar" 0.5, " baz" 0.45. After " bar": torn between " baz", " qux" and a
  // newline (0.3 each): the best line through it has p 0.15. After " baz": a newline, 0.95
  // (p 0.43). Greedy says " bar" then a newline; the most probable line is " baz".
  let history: number[] = [];
  const next = (): Float32Array => {
    const last = history[history.length - 1];
    if (last === bar) return logits({ [baz]: 0.3, [qux]: 0.3, [nl]: 0.3 });
    if (last === baz || last === qux) return logits({ [nl]: 0.95 });
    return logits({ [bar]: 0.5, [baz]: 0.45 });
  };
  const session = {
    commonPrefix: () => 0,
    prime: (ids: ArrayLike<number>) => { history = Array.from(ids); return next(); },
    append: (i: number) => { history.push(i); return next(); },
  };
  const model = standIn(tok, { gpt: session, ngram: null, copy: null, weights: null, vocabSize: V });
  const settings = { ...DEFAULT_COMPLETION_SETTINGS, mode: 'line' as const, temperature: 0, minMeanLogProb: -Infinity };
  const run = (beamWidth: number): Promise<string> =>
    new CompletionEngine(() => model, settings, { useCache: false, reuseSuggestions: false, beamWidth }).complete({ uri: 'u', text: 'foo\n', offset: 4 }, () => false).then((r) => r.text);
  // (The prompt's trailing newline is healed: re-spelled by the first token, then the line follows.)
  assert.equal(await run(1), ' bar');
  assert.equal(await run(2), ' baz');
  assert.equal(await run(4), ' baz');
});

test('capTokens: whole files spread across the stream, within the budget; everything when it fits', () => {
  const rng = new Rng(3);
  const files: number[][] = Array.from({ length: 200 }, (_, f) => [...Array.from({ length: 5 + rng.int(50) }, () => f % 9), 9]);
  const stream = Uint16Array.from(files.flat());
  assert.equal(capTokens(stream, 9, stream.length), stream);
  const capped = capTokens(stream, 9, Math.floor(stream.length / 3));
  assert.ok(capped.length <= stream.length / 3 && capped.length > stream.length / 4, `${capped.length} of ${stream.length}`);
  // Whole files only: the capped stream is a concatenation of some of the files, in order, spread out.
  const kept: number[] = [];
  let at = 0;
  files.forEach((f, i) => {
    if (at < capped.length && f.every((t, j) => capped[at + j] === t) && f.length <= capped.length - at) { kept.push(i); at += f.length; }
  });
  assert.equal(at, capped.length);
  assert.ok(kept[0]! < 20 && kept[kept.length - 1]! > 180, `files ${kept[0]}…${kept[kept.length - 1]}`);
});
