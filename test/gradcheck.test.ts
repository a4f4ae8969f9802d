// Finite-difference gradient checks of every layer and of the whole model, in float64 so central
// differences are accurate to ~1e-9 and a wrong term in a backward shows up as a large error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/ml/layers';
import { Gpt } from '../src/ml/gpt';
import { Rng } from '../src/ml/rng';
import { randomArray } from './helpers';

const EPS = 1e-5;
const TOL = 1e-6;

/**
 * loss(x) = Σ out(x) · R for a fixed random R, so d loss / d out = R is what we feed backward.
 * Compares the analytic gradient with central differences at every entry of each input.
 */
function check(
  name: string,
  inputs: Record<string, Float64Array>,
  outSize: number,
  forward: (out: Float64Array) => void,
  backward: (dout: Float64Array, grads: Record<string, Float64Array>) => void,
  rng: Rng,
): void {
  const R = randomArray(rng, outSize) as Float64Array;
  const out = new Float64Array(outSize);
  const loss = (): number => {
    forward(out);
    let s = 0;
    for (let i = 0; i < outSize; i++) s += out[i]! * R[i]!;
    return s;
  };
  const grads: Record<string, Float64Array> = {};
  for (const [k, v] of Object.entries(inputs)) grads[k] = new Float64Array(v.length);
  forward(out);
  backward(R, grads);
  for (const [k, x] of Object.entries(inputs)) {
    const g = grads[k]!;
    let maxErr = 0;
    let maxRef = 0;
    for (let i = 0; i < x.length; i++) {
      const orig = x[i]!;
      x[i] = orig + EPS;
      const lp = loss();
      x[i] = orig - EPS;
      const lm = loss();
      x[i] = orig;
      const num = (lp - lm) / (2 * EPS);
      maxErr = Math.max(maxErr, Math.abs(num - g[i]!));
      maxRef = Math.max(maxRef, Math.abs(num));
    }
    assert.ok(maxRef > 0, `${name}/${k}: numeric gradient is all zero, the check would prove nothing`);
    assert.ok(maxErr / maxRef < TOL, `${name}/${k}: analytic vs numeric relative error ${(maxErr / maxRef).toExponential(2)}`);
  }
}

const f64 = (rng: Rng, n: number, scale = 1): Float64Array => randomArray(rng, n, scale) as Float64Array;

test('encoder backward matches finite differences', () => {
  const rng = new Rng(1);
  const B = 2, T = 3, C = 4, V = 5;
  const ids = [0, 3, 3, 4, 1, 0];
  const wte = f64(rng, V * C), wpe = f64(rng, T * C);
  check('encoder', { wte, wpe }, B * T * C,
    (out) => L.encoderForward(out, ids, wte, wpe, B, T, C),
    (dout, g) => L.encoderBackward(g['wte']!, g['wpe']!, dout, ids, B, T, C), rng);
});

test('layernorm backward matches finite differences', () => {
  const rng = new Rng(2);
  const N = 5, C = 7;
  const inp = f64(rng, N * C, 2), weight = f64(rng, C), bias = f64(rng, C);
  const mean = new Float64Array(N), rstd = new Float64Array(N);
  check('layernorm', { inp, weight, bias }, N * C,
    (out) => L.layernormForward(out, mean, rstd, inp, weight, bias, N, C),
    (dout, g) => L.layernormBackward(g['inp']!, g['weight']!, g['bias']!, dout, inp, weight, mean, rstd, N, C), rng);
});

test('matmul backward matches finite differences (ragged row count, bias and no bias)', () => {
  const rng = new Rng(3);
  for (const withBias of [true, false]) {
    const N = 7, C = 5, OC = 6; // N not a multiple of the 4-row block
    const inp = f64(rng, N * C), weight = f64(rng, C * OC), bias = f64(rng, OC);
    const inputs: Record<string, Float64Array> = withBias ? { inp, weight, bias } : { inp, weight };
    check(`matmul bias=${withBias}`, inputs, N * OC,
      (out) => L.matmulForward(out, inp, weight, withBias ? bias : null, N, C, OC),
      (dout, g) => L.matmulBackward(g['inp']!, g['weight']!, withBias ? g['bias']! : null, dout, inp, weight, N, C, OC), rng);
  }
});

test('matmul forward equals a naive triple loop', () => {
  const rng = new Rng(33);
  const N = 9, C = 6, OC = 5;
  const inp = f64(rng, N * C), weight = f64(rng, C * OC), bias = f64(rng, OC);
  const out = new Float64Array(N * OC);
  L.matmulForward(out, inp, weight, bias, N, C, OC);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OC; o++) {
      let s = bias[o]!;
      for (let c = 0; c < C; c++) s += inp[n * C + c]! * weight[c * OC + o]!;
      assert.ok(Math.abs(s - out[n * OC + o]!) < 1e-12);
    }
  }
});

test('tied head backward matches finite differences', () => {
  const rng = new Rng(4);
  const N = 3, C = 4, V = 6;
  const inp = f64(rng, N * C), wte = f64(rng, V * C);
  check('head', { inp, wte }, N * V,
    (out) => L.headForward(out, inp, wte, N, C, V),
    (dout, g) => L.headBackward(g['inp']!, g['wte']!, dout, inp, wte, N, C, V), rng);
});

test('causal attention backward matches finite differences', () => {
  const rng = new Rng(5);
  const B = 2, T = 4, C = 6, NH = 2;
  const qkv = f64(rng, B * T * 3 * C);
  const att = new Float64Array(B * NH * T * T);
  const scratch = new Float64Array(T);
  check('attention', { qkv }, B * T * C,
    (out) => L.attentionForward(out, att, qkv, B, T, C, NH),
    (dout, g) => L.attentionBackward(g['qkv']!, scratch, dout, qkv, att, B, T, C, NH), rng);
});

test('attention is causal: changing a later token never changes an earlier output', () => {
  const rng = new Rng(55);
  const B = 1, T = 5, C = 4, NH = 2;
  const qkv = f64(rng, T * 3 * C);
  const att = new Float64Array(NH * T * T);
  const out1 = new Float64Array(T * C), out2 = new Float64Array(T * C);
  L.attentionForward(out1, att, qkv, B, T, C, NH);
  for (let i = 4 * 3 * C; i < 5 * 3 * C; i++) qkv[i] = qkv[i]! + 1;
  L.attentionForward(out2, att, qkv, B, T, C, NH);
  assert.deepEqual(Array.from(out1.subarray(0, 4 * C)), Array.from(out2.subarray(0, 4 * C)));
  assert.notDeepEqual(Array.from(out1.subarray(4 * C)), Array.from(out2.subarray(4 * C)));
});

test('gelu backward matches finite differences', () => {
  const rng = new Rng(6);
  const n = 20;
  const inp = f64(rng, n, 2);
  check('gelu', { inp }, n, (out) => L.geluForward(out, inp, n), (dout, g) => L.geluBackward(g['inp']!, inp, dout, n), rng);
});

test('fused softmax cross-entropy gradient matches finite differences; ignored rows give 0', () => {
  const rng = new Rng(7);
  const N = 4, V = 9;
  const logits = f64(rng, N * V, 3);
  const targets = [2, -1, 8, 0];
  const losses = new Float64Array(N);
  const lossOf = (): number => L.crossEntropyForwardBackward(Float64Array.from(logits), losses, targets, N, V, null) / 3;
  const d = Float64Array.from(logits);
  const total = L.crossEntropyForwardBackward(d, losses, targets, N, V, 1 / 3);
  assert.equal(losses[1], 0);
  assert.ok(Math.abs(total / 3 - lossOf()) < 1e-12);
  for (let i = 0; i < N * V; i++) {
    const orig = logits[i]!;
    logits[i] = orig + EPS;
    const lp = lossOf();
    logits[i] = orig - EPS;
    const lm = lossOf();
    logits[i] = orig;
    assert.ok(Math.abs((lp - lm) / (2 * EPS) - d[i]!) < 1e-8, `dlogits[${i}]`);
  }
  for (let v = 0; v < V; v++) assert.equal(d[V + v], 0, 'ignored row must have zero gradient');
});

/**
 * Central differences of lossAt() at several entries of every tensor of the model, against the
 * analytic gradient (wpe rows ≥ T get no gradient; entries are sampled from rows < T there).
 */
function checkModelGradient(model: Gpt, analytic: Float64Array, lossAt: () => number, T: number, rng: Rng): void {
  for (const t of model.layout) {
    let maxErr = 0, maxRef = 0;
    const limit = t.name === 'transformer.wpe.weight' ? T * model.cfg.dModel : t.size;
    for (let k = 0; k < 6; k++) {
      const i = t.offset + rng.int(limit);
      const orig = model.params[i]!;
      model.params[i] = orig + EPS;
      const lp = lossAt();
      model.params[i] = orig - EPS;
      const lm = lossAt();
      model.params[i] = orig;
      const num = (lp - lm) / (2 * EPS);
      maxErr = Math.max(maxErr, Math.abs(num - analytic[i]!));
      maxRef = Math.max(maxRef, Math.abs(num), Math.abs(analytic[i]!));
    }
    assert.ok(maxErr <= 1e-6 * Math.max(maxRef, 1e-3), `${t.name}: max abs error ${maxErr.toExponential(2)} (scale ${maxRef.toExponential(2)})`);
  }
}

test('whole GPT: backward matches finite differences of the loss (float64, every tensor)', () => {
  const rng = new Rng(8);
  const cfg = { vocabSize: 11, contextLength: 6, dModel: 8, nLayer: 2, nHead: 2 };
  const model = new Gpt(cfg, 'float64');
  // Larger-than-default weights so every path carries signal.
  for (let i = 0; i < model.params.length; i++) model.params[i] = rng.normal() * 0.3;
  const B = 2, T = 5;
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
  const targets = Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
  model.zeroGrad();
  model.forward(ids, targets, B, T);
  model.backward();
  checkModelGradient(model, Float64Array.from(model.grads), () => model.evaluate(ids, targets, B, T), T, rng);
});

for (const plainShare of [0, 0.4]) test(`whole GPT with the mixture loss (plain share ${plainShare}): backward is the gradient of mean β·CE − (1 − β)·ln(p_gpt(y) + odds) (float64, every tensor)`, () => {
  const rng = new Rng(9);
  const cfg = { vocabSize: 11, contextLength: 6, dModel: 8, nLayer: 2, nHead: 2 };
  const model = new Gpt(cfg, 'float64');
  for (let i = 0; i < model.params.length; i++) model.params[i] = rng.normal() * 0.3;
  const B = 2, T = 5, N = B * T;
  const ids = Array.from({ length: N }, () => rng.int(cfg.vocabSize));
  const targets = Array.from({ length: N }, (_, i) => (i === 3 ? -1 : rng.int(cfg.vocabSize)));
  // Odds from none (0: plain cross-entropy there) to the counts far ahead of the GPT.
  const odds = Array.from({ length: N }, (_, i) => (i % 4 === 0 ? 0 : Math.exp(rng.normal() * 2 - 2)));
  const counted = targets.filter((t) => t >= 0).length;
  // The reference: the loss from the GPT's per-position cross-entropy, written out.
  const mixtureLoss = (): number => {
    model.evaluate(ids, targets, B, T);
    const ce = model.lossesView();
    let s = 0;
    for (let i = 0; i < N; i++) if (targets[i]! >= 0) s += plainShare * ce[i]! - (1 - plainShare) * Math.log(Math.exp(-ce[i]!) + odds[i]!);
    return s / counted;
  };
  model.zeroGrad();
  model.forward(ids, targets, B, T, undefined, { odds, plainShare });
  model.backward();
  const analytic = Float64Array.from(model.grads);
  let plainDiffers = false;
  model.zeroGrad();
  model.forward(ids, targets, B, T);
  model.backward();
  for (let i = 0; i < analytic.length; i++) if (Math.abs(model.grads[i]! - analytic[i]!) > 1e-9) plainDiffers = true;
  assert.ok(plainDiffers, 'the odds must change the gradient, or this test proves nothing');
  checkModelGradient(model, analytic, mixtureLoss, T, rng);
});
