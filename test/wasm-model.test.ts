// The WASM SIMD backend runs the same model as the TypeScript twins: same loss, same gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gpt } from '../src/ml/gpt';
import { Rng } from '../src/ml/rng';
import { createWasmRuntime } from '../src/ml/wasmRuntime';
import { readKernelWasm } from '../src/runtime/distFiles';
import { assertClose } from './helpers';
import { InferenceSession } from '../src/ml/sample';

const wasm = readKernelWasm();
/** Missing, the tests fail saying how to build it (a skip would prove nothing). */
const kernelWasm = (): Uint8Array => {
  assert.ok(wasm !== null, 'dist/kernels.wasm missing: run `node esbuild.mjs` (npm test does)');
  return wasm;
};

test('wasm-backed GPT matches the TypeScript backend (loss, logits, every gradient)', () => {
  // Ragged sizes on purpose: T, C and V not multiples of the 4x8 kernel block.
  const cfg = { vocabSize: 71, contextLength: 21, dModel: 36, nLayer: 2, nHead: 3 };
  const rt = createWasmRuntime(kernelWasm());
  const fast = new Gpt(cfg, { alloc: rt.arena.alloc, ops: rt.ops });
  const slow = new Gpt(cfg);
  const rng = new Rng(4);
  for (let i = 0; i < slow.params.length; i++) slow.params[i] = rng.normal() * 0.2;
  fast.params.set(slow.params);
  const B = 3, T = 19;
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
  const targets = Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
  fast.forward(ids, null, B, T);
  slow.forward(ids, null, B, T);
  assertClose(fast.logitsView(), slow.logitsView(), 1e-5, 'logits');
  for (const m of [fast, slow]) { m.zeroGrad(); m.forward(ids, targets, B, T); m.backward(); }
  const lf = fast.forward(ids, targets, B, T), ls = slow.forward(ids, targets, B, T);
  assert.ok(Math.abs(lf - ls) < 1e-5 * ls, `loss ${lf} vs ${ls}`);
  for (const t of slow.layout) assertClose(fast.gradTensor(t.name), slow.gradTensor(t.name), 1e-4, `grad ${t.name}`);
});

test('KV-cached inference on the wasm backend matches the TypeScript backend', () => {
  const cfg = { vocabSize: 53, contextLength: 24, dModel: 32, nLayer: 2, nHead: 4 };
  const rt = createWasmRuntime(kernelWasm());
  const fast = new Gpt(cfg, { alloc: rt.arena.alloc, ops: rt.ops });
  const slow = new Gpt(cfg);
  const rng = new Rng(9);
  for (let i = 0; i < slow.params.length; i++) slow.params[i] = rng.normal() * 0.2;
  fast.params.set(slow.params);
  const a = new InferenceSession(fast), b = new InferenceSession(slow);
  const ids = Array.from({ length: 17 }, () => rng.int(cfg.vocabSize));
  assertClose(a.prime(ids.slice(0, 12)), b.prime(ids.slice(0, 12)), 1e-5, 'cold prefill');
  assertClose(a.prime(ids.slice(0, 15)), b.prime(ids.slice(0, 15)), 1e-5, 'prefill on the cache');
  for (const id of ids.slice(15)) assertClose(a.append(id), b.append(id), 1e-5, 'decode');
});
