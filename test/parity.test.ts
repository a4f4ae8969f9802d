// Parity with PyTorch: test/fixtures/gpt-reference.safetensors was written once by
// scripts/make-reference.py (torch 1.13) from fixed weights. We load the same weights and must
// reproduce its logits, loss, every gradient, and the parameters after two clipped AdamW steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSafetensors, SafeTensor } from '../src/ml/safetensors';
import { fromHfConfig } from '../src/ml/config';
import { Gpt } from '../src/ml/gpt';
import { AdamW, clipGradNorm } from '../src/ml/adamw';
import { assertClose } from './helpers';

const fixture = decodeSafetensors(readFileSync(join(__dirname, 'fixtures', 'gpt-reference.safetensors')), 'gpt-reference.safetensors');
const cfg = fromHfConfig(JSON.parse(fixture.metadata['config']!));
const opt = JSON.parse(fixture.metadata['optimizer']!) as { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number; max_grad_norm: number };

function get(name: string): SafeTensor {
  const t = fixture.tensors.get(name);
  assert.ok(t, `fixture lacks ${name}`);
  return t;
}

function loadModel(): { model: Gpt; ids: number[]; targets: number[]; B: number; T: number } {
  const model = new Gpt(cfg, 'float32');
  for (const t of model.layout) {
    const src = get(`param.${t.name}`);
    assert.deepEqual(src.shape, t.shape, `shape of ${t.name}`);
    model.params.set(src.data as Float32Array, t.offset);
  }
  const idsT = get('input_ids');
  const [B, T] = idsT.shape as [number, number];
  return { model, ids: Array.from(idsT.data as Int32Array), targets: Array.from(get('targets').data as Int32Array), B, T };
}

test('logits and loss match PyTorch', () => {
  const { model, ids, targets, B, T } = loadModel();
  model.forward(ids, null, B, T);
  assertClose(model.logitsView(), get('logits').data as Float32Array, 1e-4, 'logits');
  const loss = model.forward(ids, targets, B, T);
  const ref = (get('loss').data as Float32Array)[0]!;
  assert.ok(Math.abs(loss - ref) / ref < 1e-5, `loss ${loss} vs torch ${ref}`);
});

test('every parameter gradient matches PyTorch', () => {
  const { model, ids, targets, B, T } = loadModel();
  model.zeroGrad();
  model.forward(ids, targets, B, T);
  model.backward();
  for (const t of model.layout) {
    assertClose(model.gradTensor(t.name), get(`grad.${t.name}`).data as Float32Array, 1e-4, `grad ${t.name}`);
  }
});

test('two clipped AdamW steps on torch\'s gradients match torch.optim.AdamW (decay on matrices only)', () => {
  // Fed torch's own gradients: Adam's first steps are ~sign(g), so on our (float32-close)
  // gradients entries with |g| near rounding noise would flip; the gradients are tested above.
  const { model } = loadModel();
  const adam = new AdamW(model.numParams);
  const hyper = { lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weight_decay };
  for (const [stepName, gradName, normName] of [['step1', 'grad', 'grad_norm'], ['step2', 'grad2', 'grad_norm2']] as const) {
    for (const t of model.layout) model.grads.set(get(`${gradName}.${t.name}`).data as Float32Array, t.offset);
    const norm = clipGradNorm(model.grads, opt.max_grad_norm);
    const refNorm = (get(normName).data as Float32Array)[0]!;
    assert.ok(Math.abs(norm - refNorm) / refNorm < 1e-5, `${normName}: ${norm} vs torch ${refNorm}`);
    adam.update(model.params, model.grads, model.layout, hyper);
    for (const t of model.layout) {
      assertClose(model.tensor(t.name), get(`${stepName}.${t.name}`).data as Float32Array, 1e-5, `${stepName} ${t.name}`);
    }
  }
});

test('after torch\'s first step, our loss and gradients match torch\'s second step', () => {
  const { model, ids, targets, B, T } = loadModel();
  for (const t of model.layout) model.params.set(get(`step1.${t.name}`).data as Float32Array, t.offset);
  model.zeroGrad();
  const loss = model.forward(ids, targets, B, T);
  const ref = (get('loss2').data as Float32Array)[0]!;
  assert.ok(Math.abs(loss - ref) / ref < 1e-5, `loss2 ${loss} vs torch ${ref}`);
  model.backward();
  for (const t of model.layout) {
    assertClose(model.gradTensor(t.name), get(`grad2.${t.name}`).data as Float32Array, 1e-4, `grad2 ${t.name}`);
  }
});

test('the mixture loss: our gradient of mean −ln(p_gpt(y) + odds) matches PyTorch autograd', () => {
  const { model, ids, targets, B, T } = loadModel();
  const odds = get('odds').data as Float32Array;
  assert.ok(odds.some((x) => x === 0) && odds.some((x) => x > 1), 'the fixture covers no-counts and counts-ahead targets');
  model.zeroGrad();
  model.forward(ids, targets, B, T, undefined, { odds, plainShare: 0 });
  model.backward();
  const ce = model.lossesView();
  let loss = 0;
  for (let i = 0; i < B * T; i++) loss -= Math.log(Math.exp(-ce[i]!) + odds[i]!);
  const ref = (get('mix_loss').data as Float32Array)[0]!;
  assert.ok(Math.abs(loss / (B * T) - ref) / ref < 1e-5, `mixture loss ${loss / (B * T)} vs torch ${ref}`);
  for (const t of model.layout) {
    assertClose(model.gradTensor(t.name), get(`mixgrad.${t.name}`).data as Float32Array, 1e-4, `mixture grad ${t.name}`);
  }
});
