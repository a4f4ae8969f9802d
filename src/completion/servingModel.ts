// A checkpoint made ready for completions: weights copied into a fresh WASM kernel memory (so the
// SIMD kernels serve it; one memory per loaded model, freed with it on hot reload), a tokenizer,
// a KV-cached inference session, and — when the run's training data is at hand — the count models
// and the served weights (countModels.ts) it is mixed with. decoder(mode) is the served model
// (ml/servedModel.ts) in the mode a request asks for. Falls back to the TypeScript kernels when
// the wasm is absent.

import { Gpt } from '../ml/gpt';
import { NgramSession } from '../ml/ngram';
import { CopySession } from '../ml/copyModel';
import { InferenceSession } from '../ml/sample';
import { ServedConfig, ServedModel, ServedModelMode, ServedWeights } from '../ml/servedModel';
import { createWasmRuntime } from '../ml/wasmRuntime';
import { loadCheckpoint } from '../run/checkpoint';
import { readKernelWasm } from '../runtime/distFiles';
import type { CompletionModel } from './engine';
import { CountModels, loadCountModels } from './countModels';

export interface ServingModel extends CompletionModel {
  /** The checkpoint directory it came from. */
  dir: string;
  valLoss: number | null;
  model: Gpt;
  session: InferenceSession;
  fim: boolean;
  fimFormat: 'spm' | 'psm';
  /** Newer checkpoints that were damaged and skipped. */
  rejected: { dir: string; reason: string }[];
  /** The n-gram and copy models and the served weights (absent: the GPT serves alone, see countsSkipped). */
  counts?: { models: CountModels; weights: ServedWeights };
  /** Why there are no count models (when there are none). */
  countsSkipped?: string;
}

export interface LoadOptions {
  /** Build the count models (default true; `eval` builds its own to score each half apart). */
  counts?: boolean;
}

/**
 * The served model of a GPT session and, when present, count models with their weights, in the
 * given mode — each call a new model with its own n-gram and copy sessions (the GPT session is shared).
 * Null when the mode needs count models there are none of.
 */
export function assembleServedModel(gpt: InferenceSession | null, counts: { models: CountModels; weights: ServedWeights } | undefined, vocabSize: number, cfg: ServedConfig): ServedModel | null {
  if (cfg.mode === 'counts' && counts === undefined) return null;
  if (cfg.mode !== 'counts' && gpt === null) return null;
  const m = counts?.models;
  return new ServedModel({
    gpt,
    ngram: m !== undefined ? new NgramSession(m.kn, m.cache) : null,
    copy: m !== undefined ? new CopySession(m.corpus, m.kn.eotId) : null,
    weights: counts?.weights ?? null,
    vocabSize,
  }, cfg);
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
  const session = new InferenceSession(model);
  const decoders = new Map<ServedModelMode, ServedModel | null>();
  const served: ServingModel = {
    dir: ck.dir, step: ck.state?.step ?? null, valLoss: ck.state?.lastValLoss ?? null,
    model, tokenizer: ck.tokenizer, session, rejected: ck.rejected, contextLength: model.cfg.contextLength,
    // Runs from before FIM existed have no fimRate: they were trained left-to-right only.
    fim: (ck.state?.train.fimRate ?? 0) > 0, fimFormat: ck.state?.train.fimFormat ?? 'spm',
    decoder(mode) {
      if (!decoders.has(mode)) decoders.set(mode, assembleServedModel(session, served.counts, ck.tokenizer.vocabSize, { mode }));
      return decoders.get(mode)!;
    },
  };
  if (opts.counts !== false) {
    // Never fatal: without its count models the GPT still serves (and the status says why).
    const c = await loadCountModels(ck.dir, model, ck.tokenizer).catch((e: unknown) => ({ skipped: `n-gram model failed: ${(e as Error).message}` }));
    if ('skipped' in c) served.countsSkipped = c.skipped;
    else served.counts = { models: c.counts, weights: c.weights };
  }
  return served;
}
