import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gpt } from '../src/ml/gpt';
import { contextWindow, InferenceSession, sampleToken } from '../src/ml/sample';
import { Rng } from '../src/ml/rng';
import { assertClose } from './helpers';

function randomModel(): Gpt {
  const model = new Gpt({ vocabSize: 23, contextLength: 8, dModel: 12, nLayer: 2, nHead: 3 });
  const rng = new Rng(11);
  for (let i = 0; i < model.params.length; i++) model.params[i] = rng.normal() * 0.3;
  return model;
}

/** Logits of the last position from a plain full forward over ids. */
function fullForwardLast(model: Gpt, ids: number[]): Float32Array {
  model.forward(ids, null, 1, ids.length);
  const V = model.cfg.vocabSize;
  return Float32Array.from(model.logitsView().subarray((ids.length - 1) * V, ids.length * V));
}

test('batched prefill (cold and on top of a cache) gives the same logits as a full forward', () => {
  const model = randomModel();
  const ids = [1, 5, 7, 2, 22, 0, 3, 9];
  const s = new InferenceSession(model);
  assertClose(s.prime(ids.slice(0, 5)), fullForwardLast(model, ids.slice(0, 5)), 1e-5, 'cold prefill of 5');
  assertClose(s.prime(ids), fullForwardLast(model, ids), 1e-5, 'prefill of 3 more on the cache');
  assert.deepEqual(s.cachedTokens(), ids);
});

test('KV-cached decoding gives the same logits as a full forward at every position', () => {
  const model = randomModel();
  const ids = [1, 5, 7, 2, 22, 0, 3, 9];
  const session = new InferenceSession(model);
  let logits = session.prime(ids.slice(0, 1));
  assertClose(logits, fullForwardLast(model, ids.slice(0, 1)), 1e-5, 'position 0');
  for (let t = 1; t < ids.length; t++) {
    logits = session.append(ids[t]!);
    assertClose(logits, fullForwardLast(model, ids.slice(0, t + 1)), 1e-5, `position ${t}`);
  }
});

test('prime reuses the cached prefix and matches a fresh session', () => {
  const model = randomModel();
  const a = new InferenceSession(model);
  a.prime([1, 2, 3, 4, 5]);
  assert.equal(a.commonPrefix([1, 2, 3, 9]), 3);
  const reused = Float32Array.from(a.prime([1, 2, 3, 9, 10]));
  const fresh = Float32Array.from(new InferenceSession(model).prime([1, 2, 3, 9, 10]));
  assertClose(reused, fresh, 1e-5, "reused prefix vs fresh");
});

test('past the context length the window slides and stays equal to a full forward of the kept tokens', () => {
  const model = randomModel();
  const session = new InferenceSession(model);
  const ids = [3, 1, 4, 1, 5, 9, 2, 6];
  session.prime(ids);
  const logits = session.append(5); // context 8 is full: keeps the last 4, then appends
  assertClose(logits, fullForwardLast(model, [5, 9, 2, 6, 5]), 1e-5, 'after slide');
  assert.throws(() => new InferenceSession(model).prime([1, 2, 3, 4, 5, 6, 7, 8, 9]), /exceed the context/);
});

test('contextWindow keeps the tail, leaves room for new tokens, and moves in quarter-context steps', () => {
  const ids = Array.from({ length: 100 }, (_, i) => i);
  assert.deepEqual(contextWindow(ids.slice(0, 20), 64, 16), ids.slice(0, 20));
  const w = contextWindow(ids, 64, 16);
  assert.ok(w.length <= 48 && w.length > 48 - 16);
  assert.equal(w[w.length - 1], 99);
  // Typing a few more tokens keeps the same window start (so the cache stays valid)...
  assert.equal(contextWindow([...ids, 100, 101], 64, 16)[0], w[0]);
  // ...until the prompt outgrows it, then it jumps by a quarter context.
  const later = contextWindow([...ids, ...Array.from({ length: 20 }, (_, i) => 100 + i)], 64, 16);
  assert.equal(later[0]! - w[0]!, 16);
});

test('sampling: greedy is argmax; top-p keeps only the nucleus; banned tokens never appear', () => {
  const logits = new Float32Array([0, 5, 1, 4.9, -2]);
  const rng = new Rng(1);
  assert.equal(sampleToken(logits, { temperature: 0, topP: 1 }, rng).id, 1);
  assert.equal(sampleToken(logits, { temperature: 0, topP: 1 }, rng, new Set([1])).id, 3);
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.9 }, rng).id);
  assert.deepEqual([...seen].sort(), [1, 3], 'top-p 0.9 keeps the two dominant tokens only');
  const all = new Set<number>();
  for (let i = 0; i < 3000; i++) all.add(sampleToken(logits, { temperature: 3, topP: 1 }, rng).id);
  assert.equal(all.size, 5);
  const g = sampleToken(logits, { temperature: 0, topP: 1 }, rng);
  const logZ = Math.log(Array.from(logits).reduce((s, x) => s + Math.exp(x), 0));
  assert.ok(Math.abs(g.logProb - (5 - logZ)) < 1e-6);
});
