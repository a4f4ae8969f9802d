// A checkpoint made ready for completions: weights copied into a fresh WASM kernel memory (so the
// SIMD kernels serve it; one memory per loaded model, freed with it on hot reload), a tokenizer,
// a KV-cached inference session, and — when the run's training data is at hand — the n-gram
// companion it is mixed with (ngramCompanion.ts, ml/mixture.ts). Falls back to the TypeScript
// kernels when the wasm is absent.

import { Gpt } from '../ml/gpt';
import type { BpeTokenizer } from '../ml/bpe';
import type { MixtureWeights } from '../ml/mixture';
import { NgramSession } from '../ml/ngram';
import { CopySession } from '../ml/copyModel';
import { InferenceSession } from '../ml/sample';
import { createWasmRuntime } from '../ml/wasmRuntime';
import { loadCheckpoint } from '../run/checkpoint';
import { readKernelWasm } from '../runtime/distFiles';
import { loadNgramCompanion } from './countModels';

/** The n-gram part of the served model: a session over the document and the GPT's share per bucket. */
export interface ServedNgram {
  session: NgramSession;
  mixture: MixtureWeights;
}

/** The copy part: a session over the document (and the training tokens) and its share per match length. */
export interface ServedCopy {
  session: CopySession;
  mixture: MixtureWeights;
}

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
  /** Mixed into the GPT's predictions when present (both or neither). */
  ngram?: ServedNgram;
  copy?: ServedCopy;
  /** Why there is no n-gram companion (when there is none). */
  ngramSkipped?: string;
}

export interface LoadOptions {
  /** Build the n-gram companion (default true; `eval` builds its own to score each half apart). */
  ngram?: boolean;
}

let wasmBytes: Uint8Array | null | undefined;

export async function loadServingModel(dir: string, opts: LoadOptions = {}): Promise<ServingModel> {
  const ck = await loadCheckpoint(dir);
  wasmBytes ??= readKernelWasm();
  let model = ck.model;
  if (wasmBytes !== null) {
    const rt = createWasmRuntime(wasmBytes);
    model = new Gpt(ck.model.cfg, { alloc: rt.arena.alloc, ops: rt.ops });
    model.params.set(ck.model.params);
  }
  const served: ServingModel = {
    dir: ck.dir, step: ck.state?.step ?? null, valLoss: ck.state?.lastValLoss ?? null,
    model, tokenizer: ck.tokenizer, session: new InferenceSession(model), rejected: ck.rejected,
    // Runs from before FIM existed have no fimRate: they were trained left-to-right only.
    fim: (ck.state?.train.fimRate ?? 0) > 0, fimFormat: ck.state?.train.fimFormat ?? 'spm',
  };
  if (opts.ngram !== false) {
    // Never fatal: without its companions the GPT still serves (and the status says why).
    const c = await loadNgramCompanion(ck.dir, model, ck.tokenizer).catch((e: unknown) => ({ skipped: `n-gram model failed: ${(e as Error).message}` }));
    if ('skipped' in c) served.ngramSkipped = c.skipped;
    else {
      served.ngram = { session: new NgramSession(c.kn, c.cache), mixture: c.mixture };
      served.copy = { session: new CopySession(c.corpus, c.kn.eotId), mixture: c.copy };
    }
  }
  return served;
}
