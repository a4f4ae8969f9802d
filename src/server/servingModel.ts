// A checkpoint made ready for completions: weights copied into a fresh WASM kernel memory (so the
// SIMD kernels serve it; one memory per loaded model, freed with it on hot reload), a tokenizer
// and a KV-cached inference session. Falls back to the TypeScript kernels when the wasm is absent.

import { Gpt } from '../ml/gpt';
import type { BpeTokenizer } from '../ml/bpe';
import { InferenceSession } from '../ml/sample';
import { createWasmRuntime } from '../ml/wasmRuntime';
import { loadCheckpoint } from './checkpoint';
import { readKernelWasm } from './distFiles';

export interface ServingModel {
  /** The checkpoint directory it came from. */
  dir: string;
  /** Training step of that checkpoint (null for imported weights). */
  step: number | null;
  valLoss: number | null;
  model: Gpt;
  tokenizer: BpeTokenizer;
  session: InferenceSession;
  /** Trained with fill-in-the-middle (train.fimRate > 0): completions may send the code after the cursor. */
  fim: boolean;
  /** The FIM token order it was trained with (prompts must use the same). */
  fimFormat: 'spm' | 'psm';
  /** Newer checkpoints that were damaged and skipped. */
  rejected: { dir: string; reason: string }[];
}

let wasmBytes: Uint8Array | null | undefined;

export async function loadServingModel(dir: string): Promise<ServingModel> {
  const ck = await loadCheckpoint(dir);
  wasmBytes ??= readKernelWasm();
  let model = ck.model;
  if (wasmBytes !== null) {
    const rt = createWasmRuntime(wasmBytes);
    model = new Gpt(ck.model.cfg, { alloc: rt.arena.alloc, ops: rt.ops });
    model.params.set(ck.model.params);
  }
  return {
    dir: ck.dir, step: ck.state?.step ?? null, valLoss: ck.state?.lastValLoss ?? null,
    model, tokenizer: ck.tokenizer, session: new InferenceSession(model), rejected: ck.rejected,
    // Runs from before FIM existed have no fimRate: they were trained left-to-right only.
    fim: (ck.state?.train.fimRate ?? 0) > 0, fimFormat: ck.state?.train.fimFormat ?? 'spm',
  };
}
