// The served model (src/ml/servedModel.ts) is one definition: the distribution it decodes from,
// for every token of the vocabulary, equals servedTokenProbability — the formula eval's bits per
// byte and the weight fit use — in every mode, with real n-gram and copy sessions; the modes
// leave out what they say; the incremental history equals a fresh replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KneserNey, NgramSession, mixtureBuckets } from '../src/ml/ngram';
import { COPY_BUCKETS, copyBucket, copyProbability, CopyCorpus, CopySession } from '../src/ml/copyModel';
import type { MixtureWeights } from '../src/ml/mixture';
import { ServedConfig, ServedModel, servedTokenProbability, ServedWeights, WindowSession } from '../src/ml/servedModel';
import { Rng } from '../src/ml/rng';

const V = 40;
const EOT = 0;

/** Token streams with repeats, so the n-gram model has depth and the copy model has matches. */
function stream(rng: Rng, n: number): Uint16Array {
  const motifs = Array.from({ length: 6 }, () => Array.from({ length: 3 + rng.int(8) }, () => 1 + rng.int(V - 1)));
  const out: number[] = [];
  while (out.length < n) {
    if (rng.next() < 0.05) out.push(EOT);
    else if (rng.next() < 0.6) out.push(...motifs[rng.int(motifs.length)]!);
    else out.push(1 + rng.int(V - 1));
  }
  return Uint16Array.from(out.slice(0, n));
}

const weights = (n: number, rng: Rng, zeroFirst = false): MixtureWeights => ({
  weights: Array.from({ length: n }, (_, b) => (zeroFirst && b === 0 ? 0 : 0.05 + 0.9 * rng.next())),
  counts: new Array<number>(n).fill(0), nats: { gpt: 0, ngram: 0, mixture: 0 },
});

/** A stand-in GPT: logits a fixed function of the window's last token and length. */
function fakeGpt(): WindowSession & { logitsFor(window: number[]): Float32Array } {
  let window: number[] = [];
  const logitsFor = (w: number[]): Float32Array => {
    const r = new Rng(w.length * 131 + (w[w.length - 1] ?? 7));
    return Float32Array.from({ length: V }, () => 4 * r.next() - 2);
  };
  return {
    logitsFor,
    commonPrefix: () => 0,
    prime: (ids) => { window = Array.from(ids); return logitsFor(window); },
    append: (id) => { window.push(id); return logitsFor(window); },
  };
}

const softmax = (x: ArrayLike<number>): number[] => {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]!);
  const e = Array.from(x, (v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
};

test('every mode decodes exactly the distribution servedTokenProbability scores', () => {
  const rng = new Rng(3);
  const train = stream(rng, 5000);
  const kn = KneserNey.train(train, { order: 4, vocabSize: V, eotId: EOT });
  const corpus = new CopyCorpus(train, EOT);
  const w: ServedWeights = { mixture: weights(mixtureBuckets(4), rng), copy: weights(COPY_BUCKETS, rng, true), copyOverNgram: weights(COPY_BUCKETS, rng, true) };
  const configs: ServedConfig[] = [{ mode: 'served' }, { mode: 'gpt' }, { mode: 'counts' }, { mode: 'served', copy: false }, { mode: 'counts', copy: false }];
  let sawCopy = 0;
  for (const cfg of configs) {
    const gpt = fakeGpt();
    const model = new ServedModel({ gpt, ngram: new NgramSession(kn), copy: new CopySession(corpus, EOT), weights: w, vocabSize: V }, cfg);
    // Reference sessions, told the same history.
    const refNgram = new NgramSession(kn);
    const refCopy = new CopySession(corpus, EOT);
    for (let trial = 0; trial < 30; trial++) {
      const history = [EOT, ...Array.from(stream(rng, 20 + rng.int(60))).filter((t) => t !== EOT)];
      const window = history.slice(-16);
      const scores = model.prime(window, history);
      refNgram.reset();
      for (const t of history) refNgram.push(t);
      refCopy.reset();
      for (const t of history) refCopy.push(t);
      const pN = refNgram.distribution();
      const bucket = refNgram.bucket(pN);
      const pred = refCopy.predict();
      if (pred.length > 0) sawCopy++;
      const pG = softmax(gpt.logitsFor(window));
      const served = softmax(scores); // log-probabilities or logits: normalised either way
      for (let t = 0; t < V; t++) {
        const want = servedTokenProbability(cfg, w, pG[t]!, pN[t]!, bucket, copyProbability(pred, t), copyBucket(pred.length));
        assert.ok(Math.abs(served[t]! - want) < 2e-5 * Math.max(1, want / 1e-3), `${JSON.stringify(cfg)} token ${t}: ${served[t]} vs ${want}`);
      }
    }
  }
  assert.ok(sawCopy > 20, `the copy model predicted in ${sawCopy} trials`);
});

test('modes: gpt follows no history, counts needs the n-gram model, served needs the GPT', () => {
  const gpt = fakeGpt();
  const kn = KneserNey.train(stream(new Rng(1), 2000), { order: 4, vocabSize: V, eotId: EOT });
  const rng = new Rng(2);
  const w: ServedWeights = { mixture: weights(16, rng), copy: weights(COPY_BUCKETS, rng, true), copyOverNgram: weights(COPY_BUCKETS, rng, true) };
  const alone = new ServedModel({ gpt, ngram: new NgramSession(kn), copy: null, weights: w, vocabSize: V }, { mode: 'gpt' });
  assert.equal(alone.followsHistory, false);
  assert.deepEqual(Array.from(alone.prime([1, 2, 3], [9, 9, 9])), Array.from(gpt.logitsFor([1, 2, 3])), 'the GPT\'s logits, untouched');
  assert.throws(() => new ServedModel({ gpt, ngram: null, copy: null, weights: null, vocabSize: V }, { mode: 'counts' }), /needs the n-gram model/);
  assert.throws(() => new ServedModel({ gpt: null, ngram: new NgramSession(kn), copy: null, weights: w, vocabSize: V }, { mode: 'served' }), /needs the GPT/);
  assert.throws(() => new ServedModel({ gpt, ngram: new NgramSession(kn), copy: null, weights: null, vocabSize: V }, { mode: 'served' }), /fitted weights/);
  const counts = new ServedModel({ gpt, ngram: new NgramSession(kn), copy: null, weights: w, vocabSize: V }, { mode: 'counts' });
  const ref = new NgramSession(kn);
  for (const t of [EOT, 5, 6, 7]) ref.push(t);
  const p = ref.distribution();
  const got = counts.prime([1], [EOT, 5, 6, 7]);
  for (let t = 0; t < V; t++) assert.ok(Math.abs(Math.exp(got[t]!) - p[t]!) < 1e-6, 'counts without copy = the n-gram model');
});

test('the history is replayed incrementally, with the same scores as a fresh model', () => {
  const rng = new Rng(5);
  const train = stream(rng, 4000);
  const kn = KneserNey.train(train, { order: 4, vocabSize: V, eotId: EOT });
  const corpus = new CopyCorpus(train, EOT);
  const w: ServedWeights = { mixture: weights(16, rng), copy: weights(COPY_BUCKETS, rng, true), copyOverNgram: weights(COPY_BUCKETS, rng, true) };
  const make = (): ServedModel => new ServedModel({ gpt: fakeGpt(), ngram: new NgramSession(kn), copy: new CopySession(corpus, EOT), weights: w, vocabSize: V }, { mode: 'served' });
  const typing = make();
  let doc = [EOT, ...Array.from(stream(rng, 300)).filter((t) => t !== EOT)];
  for (let k = 0; k < 40; k++) {
    // Type a token, take one back, or jump elsewhere; sometimes decode a few tokens after it.
    const r = rng.next();
    if (r < 0.6) doc = [...doc, 1 + rng.int(V - 1)];
    else if (r < 0.85) doc = doc.slice(0, -1 - rng.int(3));
    else doc = [EOT, ...Array.from(stream(rng, 100)).filter((t) => t !== EOT)];
    const got = Array.from(typing.prime(doc.slice(-8), doc));
    const fresh = make();
    assert.deepEqual(got, Array.from(fresh.prime(doc.slice(-8), doc)), `request ${k}`);
    const extra = [1 + rng.int(V - 1), 1 + rng.int(V - 1)];
    for (const id of extra) assert.deepEqual(Array.from(typing.append(id)), Array.from(fresh.append(id)), `request ${k}, appended ${id}`);
  }
});
