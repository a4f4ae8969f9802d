// The worker pool and its reduction tree: the tree's shape, and the same training trajectory no
// matter how many workers share the batch (and the same as the single-threaded TypeScript twin).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { reductionTree, splitBatch, splitRange } from '../src/training/reductionTree';
import { TrainingPool } from '../src/training/trainingPool';
import { distPath } from '../src/runtime/distFiles';
import { PRESETS } from '../src/ml/config';
import { Gpt } from '../src/ml/gpt';
import type { MixtureLoss } from '../src/ml/layers';
import { AdamW, clipGradNorm } from '../src/ml/adamw';
import { Rng } from '../src/ml/rng';
import { RESERVED_STATIC_BYTES, staticDataEnd } from '../src/ml/kernels/staticData';

test('reduction tree: 64 workers with fan-out 12 is the seed\'s 1 → 12 → 51', () => {
  const t = reductionTree(64, 12);
  assert.equal(t.root, 0);
  assert.equal(t.leaders.length, 12);
  const children = t.leaders.flatMap((l) => l.children);
  assert.equal(children.length, 51);
  const all = [t.root, ...t.leaders.map((l) => l.leader), ...children].sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: 64 }, (_, i) => i), 'every worker exactly once');
  const sizes = t.leaders.map((l) => l.children.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, 'children dealt evenly');
  assert.deepEqual(reductionTree(1, 12).leaders, []);
  assert.deepEqual(reductionTree(2, 12).leaders, [{ leader: 1, children: [] }]);
  assert.deepEqual(reductionTree(5, 2).leaders, [{ leader: 1, children: [3] }, { leader: 2, children: [4] }]);
  assert.throws(() => reductionTree(0, 12), /positive integer/);
});

test('splitRange and splitBatch cover everything exactly once', () => {
  for (const [n, parts] of [[1000, 3], [5, 4], [16, 16], [5_750_000, 13]] as const) {
    const r = splitRange(n, parts);
    assert.equal(r[0]![0], 0);
    assert.equal(r[r.length - 1]![1], n);
    for (let i = 1; i < r.length; i++) assert.equal(r[i]![0], r[i - 1]![1]);
    assert.ok(r.length <= parts);
  }
  const b = splitBatch(8, 3);
  assert.deepEqual(b.counts, [3, 3, 2]);
  assert.deepEqual(b.starts, [0, 3, 6]);
  assert.deepEqual(splitBatch(2, 4).counts, [1, 1, 0, 0]);
});

/** A built file the test needs; missing, the test fails saying how to build it (a skip would prove nothing). */
function built(name: string): string {
  const p = distPath(name);
  assert.ok(p !== null, `dist/${name} missing: run \`node esbuild.mjs\` first (npm test does)`);
  return p;
}

test('kernels.wasm keeps its static data below the bytes the arenas leave free', () => {
  const end = staticDataEnd(readFileSync(built('kernels.wasm')));
  assert.ok(end <= RESERVED_STATIC_BYTES, `static data ends at ${end}`);
});

/** Random ids whose next token is a fixed function of the current one: something to learn. */
function learnableBatch(rng: Rng, n: number, V: number): { ids: Int32Array; targets: Int32Array } {
  const ids = Int32Array.from({ length: n }, () => rng.int(V));
  const targets = ids.map((x) => (x * 3 + 1) % V);
  return { ids, targets };
}

/** Losses of `steps` optimizer steps on fixed random batches, with the single-threaded TS twin. */
/** The mixture loss's inputs for a batch of n targets (deterministic): no counts at every third position, odds 0.05–0.35 elsewhere. */
function mixtureOf(n: number, plainShare: number): MixtureLoss {
  return { odds: Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 0.05 * (1 + (i % 7)))), plainShare };
}

function twinTrajectory(B: number, T: number, steps: number, mixture?: MixtureLoss): number[] {
  const cfg = PRESETS.tiny.model;
  const model = new Gpt(cfg);
  model.initWeights(new Rng(7));
  const opt = new AdamW(model.numParams);
  const rng = new Rng(8);
  const out: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { ids, targets } = learnableBatch(rng, B * T, cfg.vocabSize);
    model.zeroGrad();
    out.push(model.forward(ids, targets, B, T, undefined, mixture ?? null));
    model.backward();
    clipGradNorm(model.grads, 1);
    opt.update(model.params, model.grads, model.layout, { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  }
  return out;
}

async function poolTrajectory(threads: number, B: number, T: number, steps: number, mixture?: MixtureLoss): Promise<number[]> {
  const cfg = PRESETS.tiny.model;
  const pool = TrainingPool.create({ cfg, B, T, threads, fanout: 12 });
  try {
    pool.model.initWeights(new Rng(7));
    const rng = new Rng(8);
    const out: number[] = [];
    for (let s = 0; s < steps; s++) {
      const { ids, targets } = learnableBatch(rng, B * T, cfg.vocabSize);
      const r = await pool.trainStep(ids, targets, { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, 1, mixture);
      out.push(r.loss);
    }
    return out;
  } finally {
    await pool.close();
  }
}

test('same loss trajectory for 1, 2, 13 and 64 workers, and equal to the TypeScript twin', async () => {
  built('trainWorker.js');
  // Batch 64 so that even 64 workers each get a sequence: the full 1 → 12 → 51 tree reduces.
  const B = 64, T = 16, steps = 5;
  const twin = twinTrajectory(B, T, steps);
  assert.ok(twin[steps - 1]! < twin[0]! - 0.1, 'the run must learn, or equal trajectories prove little');
  for (const threads of [1, 2, 13, 64]) {
    const losses = await poolTrajectory(threads, B, T, steps);
    for (let s = 0; s < steps; s++) {
      assert.ok(Math.abs(losses[s]! - twin[s]!) <= 1e-4 * twin[s]!, `${threads} workers, step ${s}: ${losses[s]} vs twin ${twin[s]}`);
    }
  }
});

test('the mixture loss: the same trajectory for 1 and 3 workers as the TypeScript twin, and not plain training\'s', async () => {
  built('trainWorker.js');
  const B = 6, T = 16, steps = 5;
  const mixture = mixtureOf(B * T, 0.3);
  const twin = twinTrajectory(B, T, steps, mixture);
  const plain = twinTrajectory(B, T, steps);
  assert.ok(Math.abs(twin[steps - 1]! - plain[steps - 1]!) > 1e-3, 'the mixture loss must change the updates, or this test proves nothing');
  for (const threads of [1, 3]) {
    const losses = await poolTrajectory(threads, B, T, steps, mixture);
    for (let s = 0; s < steps; s++) {
      assert.ok(Math.abs(losses[s]! - twin[s]!) <= 1e-4 * twin[s]!, `${threads} workers, step ${s}: ${losses[s]} vs twin ${twin[s]}`);
    }
  }
});
