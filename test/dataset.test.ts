import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchLoader, encodeDocuments, splitByFile, validationBatches, Document } from '../src/ml/dataset';
import { learningRate } from '../src/ml/adamw';
import { Rng } from '../src/ml/rng';

const doc = (path: string, text = path): Document => ({ path, bytes: new TextEncoder().encode(text) });

test('split is by file, deterministic, independent of input order, ~valFraction held out', () => {
  const docs = Array.from({ length: 400 }, (_, i) => doc(`src/dir${i % 7}/file${i}.ts`));
  const a = splitByFile(docs, 0.08);
  const b = splitByFile([...docs].reverse(), 0.08);
  assert.deepEqual(a.val.map((d) => d.path), b.val.map((d) => d.path));
  assert.equal(a.train.length + a.val.length, docs.length);
  const trainPaths = new Set(a.train.map((d) => d.path));
  for (const d of a.val) assert.ok(!trainPaths.has(d.path), 'a file is in both splits');
  assert.ok(a.val.length >= 16 && a.val.length <= 48, `held out ${a.val.length} of 400`);
  // Adding files does not move existing files between splits.
  const more = splitByFile([...docs, doc('new/file.c')], 0.08);
  for (const d of a.val) assert.ok(more.val.some((x) => x.path === d.path));
});

test('small repos: at least one held-out file when there are two, none with one', () => {
  const two = splitByFile([doc('a.c'), doc('b.c')], 0.08);
  assert.equal(two.val.length, 1);
  assert.equal(two.train.length, 1);
  const one = splitByFile([doc('a.c')], 0.08);
  assert.equal(one.val.length, 0);
  assert.equal(one.train.length, 1);
});

test('encodeDocuments joins files with the end-of-text id', () => {
  const docs = [doc('a', 'ab'), doc('b', 'c')];
  const ids = encodeDocuments(docs, (b) => Array.from(b), 999);
  assert.deepEqual(Array.from(ids), [97, 98, 999, 99, 999]);
});

test('batch loader: targets are inputs shifted by one; an epoch visits every window once', () => {
  const N = 1000;
  const tokens = new Uint16Array(N).map((_, i) => i);
  const B = 4, T = 16;
  const loader = new BatchLoader(tokens, B, T, 42);
  const ids = new Int32Array(B * T), targets = new Int32Array(B * T);
  const starts = new Set<number>();
  const windows = loader.windowsPerEpoch;
  assert.equal(windows, Math.floor((N - 1) / T));
  for (let s = 0; s < Math.floor(windows / B); s++) {
    loader.next(ids, targets);
    for (let b = 0; b < B; b++) {
      starts.add(ids[b * T]!);
      for (let t = 0; t < T; t++) assert.equal(targets[b * T + t], ids[b * T + t]! + 1);
    }
  }
  assert.equal(starts.size, Math.floor(windows / B) * B, 'a window was repeated within an epoch');
});

test('batch loader: restoring a cursor continues exactly where the run was', () => {
  const rng = new Rng(3);
  const tokens = new Uint16Array(5000).map(() => rng.int(500));
  const B = 3, T = 20;
  const a = new BatchLoader(tokens, B, T, 7);
  const ids = new Int32Array(B * T), targets = new Int32Array(B * T);
  for (let i = 0; i < 150; i++) a.next(ids, targets); // crosses an epoch boundary (83 windows / epoch)
  const cursor = a.cursor();
  assert.ok(cursor.epoch >= 1);
  const b = new BatchLoader(tokens, B, T, 7);
  b.restore(cursor);
  const ids2 = new Int32Array(B * T), targets2 = new Int32Array(B * T);
  for (let i = 0; i < 50; i++) {
    a.next(ids, targets);
    b.next(ids2, targets2);
    assert.deepEqual(ids2, ids);
    assert.deepEqual(targets2, targets);
  }
});

test('batch loader: too few tokens is a clear error', () => {
  assert.throws(() => new BatchLoader(new Uint16Array(10), 2, 16, 1), /fewer than one window/);
});

test('validation batches are fixed and cover the split without overlap', () => {
  const tokens = new Uint16Array(2000).map((_, i) => i % 1000);
  const a = validationBatches(tokens, 4, 32, 3);
  const b = validationBatches(tokens, 4, 32, 3);
  assert.equal(a.length, 3);
  assert.deepEqual(a, b);
  // Tokens equal to their positions: each window's start is readable from its first id.
  const B = 4, T = 32;
  const positions = new Uint16Array(2000).map((_, i) => i);
  const starts: number[] = [];
  for (const { ids, targets } of validationBatches(positions, B, T, 3)) {
    for (let w = 0; w < B; w++) {
      starts.push(ids[w * T]!);
      for (let t = 0; t < T; t++) {
        assert.equal(ids[w * T + t], ids[w * T]! + t, 'a window is a contiguous run of the split');
        assert.equal(targets[w * T + t], ids[w * T + t]! + 1, 'targets are the next tokens');
      }
    }
  }
  assert.equal(starts.length, 3 * B);
  for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! >= starts[i - 1]! + T, `windows ${i - 1} and ${i} overlap: starts ${starts[i - 1]}, ${starts[i]}`);
  assert.equal(starts[0], 0);
  assert.ok(starts[starts.length - 1]! >= 0.8 * positions.length, `the windows stop at ${starts[starts.length - 1]} of ${positions.length}: not spread over the split`);
  const tiny = validationBatches(new Uint16Array(10), 4, 32, 3);
  assert.equal(tiny.length, 0);
});

test('learning rate: linear warmup, cosine down to the floor', () => {
  const s = { maxLr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110 };
  assert.ok(Math.abs(learningRate(s, 0, 0) - 1e-4) < 1e-12);
  assert.ok(Math.abs(learningRate(s, 9, 9 / 110) - 1e-3) < 1e-12);
  assert.ok(Math.abs(learningRate(s, 10, 10 / 110) - 1e-3) < 1e-9);
  const mid = learningRate(s, 60, 60 / 110);
  assert.ok(Math.abs(mid - 5.5e-4) < 1e-9, `mid ${mid}`);
  assert.ok(Math.abs(learningRate(s, 110, 1) - 1e-4) < 1e-12);
  let prev = Infinity;
  for (let step = 10; step <= 110; step++) {
    const lr = learningRate(s, step, step / 110);
    assert.ok(lr <= prev + 1e-15);
    prev = lr;
  }
});
