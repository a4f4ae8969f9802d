// Messages between the training process's main thread (the root of the reduction tree) and its
// piscina worker threads. Tensors never travel in messages: they live in one shared
// WebAssembly.Memory, and messages carry byte offsets into it.

import type { ModelConfig } from '../ml/config';
import type { TrainEvent } from './trainEvents';
import type { WasmMemory, WasmModule } from '../ml/kernels/wasmKernels';

/** One member of the reduction tree: its gradient buffer and its activation region. */
export interface SlotRegion {
  gradsPtr: number;
  /** Floats reserved for activations + activation gradients of one pass (≤ seqsPerPass sequences). */
  actsPtr: number;
  actsFloats: number;
  /** Sequences this member is dealt per step. */
  maxSeqs: number;
}

/** Everything a worker needs, sent once as piscina's workerData. */
export interface PoolSetup {
  module: WasmModule;
  memory: WasmMemory;
  cfg: ModelConfig;
  /** Sequence length of every batch. */
  T: number;
  /** Sequences per forward/backward pass inside a worker's micro-batch (bounds activation memory). */
  seqsPerPass: number;
  paramsPtr: number;
  mPtr: number;
  vPtr: number;
  /** Int32 [B*T] inputs and targets of the current batch. */
  idsPtr: number;
  targetsPtr: number;
  /** Float32 [B*T]: the counts' odds of each target, for the mixture loss (ml/countsOdds.ts). */
  oddsPtr: number;
  slots: SlotRegion[];
  /** One packing scratch region per worker thread, claimed at start-up through `counterPtr`. */
  scratchPtrs: number[];
  counterPtr: number;
  /** The worker script (dist/trainWorker.js). */
  workerFile: string;
}

export type PoolTask =
  /**
   * Forward + backward of sequences [seqStart, seqStart+seqCount) into the slot's gradients (zeroed
   * first); mixture: the mixture loss's gradient, from the batch's odds, with that plain share.
   * Returns Σ loss / lossDenominator.
   */
  | { kind: 'grad'; slot: number; seqStart: number; seqCount: number; lossDenominator: number; mixture: { plainShare: number } | null }
  /** Forward only, same sequences convention. Returns Σ loss / lossDenominator. */
  | { kind: 'eval'; slot: number; seqStart: number; seqCount: number; lossDenominator: number }
  /** grads[dst][lo:hi] += Σ grads[src][lo:hi] — one edge set of the reduction tree, one parameter range. */
  | { kind: 'reduce'; dst: number; srcs: number[]; lo: number; hi: number }
  /** Σ grads[slot][lo:hi]² (for the global norm). */
  | { kind: 'sumsq'; slot: number; lo: number; hi: number }
  /** AdamW on params[lo:hi] from grads[slot] × gradScale at step t. */
  | { kind: 'adamw'; slot: number; lo: number; hi: number; t: number; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; gradScale: number };

/** Dataset worker (worker/prepareWorker.ts) → training process. */
export type PrepareMessage =
  | { type: 'event'; event: TrainEvent }
  | { type: 'done'; result: BuildOutput }
  | { type: 'error'; message: string };

// ---- The prepare worker (index + tokenizer + encode, worker/prepareWorker.ts): its input and result.

export interface BuildInput {
  folders: string[];
  /** Never indexed (the run's own output directory). */
  excludeDirs: string[];
  vocabSize: number;
  /** Reuse this tokenizer (Hugging Face JSON) instead of training one. */
  tokenizerJson: unknown | null;
  /** With a reused tokenizer: train a new one anyway when more than TOKENIZER_DRIFT of the code changed. */
  retrainTokenizerOnDrift?: boolean;
  /** Where the per-file token cache lives (the run's data/ directory); none: no cache. */
  cacheDir?: string;
  excludeGlobs?: string[];
  includeGlobs?: string[];
  extraSecretPatterns?: string[];
  /** Source bytes to keep at most, over all folders (beyond it: a deterministic sample). */
  maxTotalBytes?: number;
  /** For the message when sampling happens. */
  memoryCapMb?: number;
  /** Index a folder that is a filesystem root, the home folder or an ancestor of it (refused otherwise). */
  allowHomeOrRoot?: boolean;
}

export interface BuildStats {
  /** Files read from disk. */
  filesRead: number;
  /** Files tokenized (read files; all files when the tokenizer was trained). */
  filesEncoded: number;
  /** Files whose tokens came from the cache. */
  filesReused: number;
  tokenizerTrained: boolean;
}

export interface BuildOutput {
  tokenizerJson: unknown;
  train: Uint16Array;
  val: Uint16Array;
  trainFiles: number;
  /** The training files in train.bin's order (each followed by one eot). */
  trainPaths: string[];
  valFiles: string[];
  corpusBytes: number;
  stats: BuildStats;
}

// ---- The counts worker (worker/countsWorker.ts): the count models' odds of every training token.

export interface CountsInput {
  /** train.bin's tokens (a copy: transferred to the worker). */
  tokens: Uint16Array;
  vocabSize: number;
  eotId: number;
  order: number;
}

export type CountsMessage =
  | { type: 'progress'; fraction: number }
  | { type: 'done'; odds: Float32Array; stats: { tokens: number; files: number; ngramNats: number; countsNats: number; seconds: number } }
  | { type: 'error'; message: string };
