// The one place where model and training defaults live. Every number here has a reason next to it;
// settings, CLI flags and presets override these, nothing else in the code invents its own.

import { LAYERNORM_EPS } from './constants';

/** Shape of the network. Names follow our code; `toHfConfig` maps them to GPT-2's config.json keys. */
export interface ModelConfig {
  /** Token ids are 0..vocabSize-1 (bytes, merges, then special tokens; see bpe/vocabulary.ts). */
  vocabSize: number;
  /** Longest sequence the model sees (GPT-2's n_positions). */
  contextLength: number;
  /** Width of the residual stream (n_embd). */
  dModel: number;
  nLayer: number;
  /** dModel must be divisible by nHead. */
  nHead: number;
}

/** Optimisation and schedule. */
export interface TrainConfig {
  batchSize: number;
  /** Peak learning rate reached after warmup. */
  learningRate: number;
  /** Cosine decay ends at learningRate * minLrRatio (not zero: the last steps still learn). */
  minLrRatio: number;
  /** Linear warmup length as a fraction of the planned steps, capped by warmupMaxSteps. */
  warmupFraction: number;
  warmupMaxSteps: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay, applied to matrices only (embeddings and Linear weights). */
  weightDecay: number;
  /** Global-norm gradient clipping threshold. */
  gradClip: number;
  /** Passes over the training tokens; the run also stops at maxSteps or after maxMinutes. */
  epochs: number;
  /** 0 = no limit. */
  maxSteps: number;
  /** 0 = no limit. With a time budget the LR schedule follows max(step, time) progress. */
  maxMinutes: number;
  /** Evaluate validation loss every N steps (and at the end). */
  evalEvery: number;
  /** Batches of the validation set per evaluation (a fixed, deterministic subset). */
  evalBatches: number;
  /** Save a checkpoint every N steps (and at the end). */
  checkpointEvery: number;
  /** Keep the newest K checkpoints in `checkpoints/`. */
  keepCheckpoints: number;
  /** Seeds weight init, data order and the held-out file split: same seed, same run. */
  seed: number;
  /**
   * Fraction of training windows rearranged for fill-in-the-middle (prefix, suffix → middle; see
   * dataset.ts), so completions can use the code after the cursor. 0 = left-to-right only.
   */
  fimRate: number;
  /** Token order of FIM windows: 'spm' (default; see dataset.ts for why) or 'psm'. */
  fimFormat: 'spm' | 'psm';
  /**
   * The loss the GPT is trained on: 'mixture' — the served mixture's (GPT + n-gram + copy, with
   * cross-fitted counts; ml/countsOdds.ts), so the network learns what the counts miss — or
   * 'plain' cross-entropy of the GPT alone. Runs saved before this option train 'plain'.
   */
  loss: 'mixture' | 'plain';
  /**
   * β: the share of the GPT's own cross-entropy in the mixture loss, β·CE + (1 − β)·mixture: the
   * pure mixture loss (β = 0) lets the network ignore what the counts predict, and a network
   * trained for minutes on one repository then spends its passes memorising the rare tokens that
   * remain (docs/experiments.md).
   */
  mixturePlainShare: number;
}

/**
 * Memory the training process may use by default (MB): sane on a laptop with 8 GB. The seed
 * preset itself needs ~250 MB; the rest bounds the corpus held while building the dataset.
 */
export const DEFAULT_MEMORY_CAP_MB = 1536;
/**
 * Peak bytes of memory per byte of source while indexing, training the tokenizer and encoding
 * (measured ~16 on a 6 MB TypeScript corpus; 20 leaves headroom).
 */
export const PREP_BYTES_PER_SOURCE_BYTE = 20;
/** What the memory cap sets aside besides the model, its moments and gradients (training/runDataset.ts). */
export const MEMORY_BUDGET = {
  /** The runtime itself (V8, the bundles, the event loop's buffers). */
  runtimeBytes: 150e6,
  /** Each training thread's activations and scratch at the default presets' batch. */
  perThreadBytes: 40e6,
} as const;

export interface DataConfig {
  /** Fraction of files held out for validation (by file, so val measures unseen files). */
  valFraction: number;
  /** Files larger than this are skipped (generated data, dumps). */
  maxFileBytes: number;
}

export interface Preset {
  model: ModelConfig;
  train: Partial<TrainConfig>;
  description: string;
}

export const DEFAULT_TRAIN: TrainConfig = {
  batchSize: 8,
  // The seed used 1e-4 with no schedule: far too low for a 4-layer model trained for minutes
  // (it barely moves off the unigram distribution). 1e-3 with warmup + cosine is the usual
  // choice at this size (nanoGPT's small configs use 1e-3) and what our measurements favour.
  learningRate: 1e-3,
  minLrRatio: 0.1,
  warmupFraction: 0.05,
  warmupMaxSteps: 200,
  beta1: 0.9,
  // 0.95 rather than Adam's 0.999: reacts faster on short runs; GPT-2/3 and nanoGPT use it.
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  gradClip: 1.0,
  epochs: 10,
  maxSteps: 0,
  maxMinutes: 0,
  evalEvery: 100,
  evalBatches: 8,
  checkpointEvery: 200,
  keepCheckpoints: 2,
  seed: 1337,
  // Bavarian et al. 2022 train with 0.5 and find FIM "for free" (left-to-right loss unchanged)
  // up to 0.9 for large models; see docs/experiments.md for what it costs and buys at our size.
  fimRate: 0.5,
  // SPM: a small model learns it in minutes; PSM it does not (docs/experiments.md).
  fimFormat: 'spm',
  loss: 'mixture',
  mixturePlainShare: 0.5,
};

/** The mixture-aware training loss (ml/countsOdds.ts). */
export const COUNTS_LOSS = {
  /** Groups of files the n-gram model is cross-fitted over: each scored by a model of the others' counts. */
  folds: 5,
  /**
   * λ, the GPT's share against the n-gram model in the training loss (the served fit's λ lies
   * around 0.1 where the n-gram is sure and 0.3–0.6 where it backs off).
   */
  gptShare: 0.5,
  /** Tokens the n-gram cache's weight is tuned on (the first fold's files). */
  cacheTuneTokens: 200_000,
} as const;

export const DEFAULT_DATA: DataConfig = {
  // 5-10% is what the issue asks; 8% keeps a few files out even in a 30-file repo.
  valFraction: 0.08,
  maxFileBytes: 1_000_000,
};

/**
 * Scheduling priority (nice, 0 … 19) of the training and dataset threads: lower than everything
 * the user runs, so training takes only the CPU nobody else wants. At +10 Linux's scheduler gives
 * a default-priority thread ~10× the CPU share of a training thread on a contended core.
 */
export const TRAINING_THREAD_NICE = 10;

/**
 * Leaders around the root of the gradient reduction tree: the seed's "kissing spheres" layout
 * (12 spheres touch one sphere) — with 64 threads, 1 root → 12 leaders → 51 workers.
 */
export const DEFAULT_FANOUT = 12;

export const PRESETS = {
  // For tests and smoke runs: trains in seconds, still learns visible structure.
  tiny: {
    description: 'tests and smoke runs: 1K vocab, d 64, 2 layers, context 64',
    model: { vocabSize: 1024, contextLength: 64, dModel: 64, nLayer: 2, nHead: 4 },
    train: { learningRate: 3e-3, batchSize: 8, epochs: 2, evalEvery: 50, checkpointEvery: 100 },
  },
  // The default (DEFAULT_PRESET). On a laptop's cores it sees ~10K tokens/s, so a 15-minute run
  // passes 4–8 times over a few-MB repository; 10 epochs let the time budget, not the epoch count,
  // end runs on such repositories (more passes kept improving held-out completions in
  // docs/experiments.md), while a small repository stops after 10. Context 256 did no better than
  // 128 at the same budget (docs/experiments.md).
  small: {
    description: 'the default: 4K vocab, d 128, 4 layers, context 128',
    model: { vocabSize: 4096, contextLength: 128, dModel: 128, nLayer: 4, nHead: 4 },
    train: { learningRate: 2e-3, batchSize: 8, epochs: 10 },
  },
  // The seed's model and batch: 10K vocab, d 256, 4 layers, 8 heads, context 128, batch 8,
  // 10 epochs. Only the learning rate and schedule differ (see DEFAULT_TRAIN.learningRate).
  seed: {
    description: "the seed's model: 10K vocab, d 256, 4 layers, 8 heads, context 128, batch 8",
    model: { vocabSize: 10_000, contextLength: 128, dModel: 256, nLayer: 4, nHead: 8 },
    train: { batchSize: 8, epochs: 10 },
  },
} satisfies Record<string, Preset>;

export type PresetName = keyof typeof PRESETS;

/**
 * The preset of a run that names none (CLI and extension): within the default time budget on a
 * laptop's cores it gives the best held-out completions of the presets (docs/experiments.md) —
 * the seed's larger model sees too few tokens in 15 minutes to catch up.
 */
export const DEFAULT_PRESET: PresetName = 'small';

/**
 * Minutes a run from the CLI or the extension trains at most unless told otherwise (0 = until
 * its epochs are done). The learning-rate schedule follows the clock, so the run ends annealed.
 */
export const DEFAULT_TIME_BUDGET_MINUTES = 15;

/**
 * The completion engine's and the served model's knobs (completion/, ml/servedModel.ts,
 * completion/countModels.ts). The user-facing completion settings and their defaults are
 * DEFAULT_COMPLETION_SETTINGS below.
 */
export const SERVING = {
  /** Characters before the cursor tokenized per context token: plenty for any window. */
  tailCharsPerToken: 12,
  /** Characters before the cursor the n-gram and copy models follow (the cache: ~4K tokens of the file). */
  historyChars: 16_384,
  /** Block granularity of the tail's start, so its tokenization is stable while typing. */
  tailAlign: 1024,
  /** Identical requests answered from the LRU cache. */
  cacheEntries: 64,
  /** Yield to the event loop every this many tokens so cancellation messages get through. */
  yieldEvery: 4,
  /** Characters read on each side of the cursor on its line (the rest of the line, its indentation, the word being typed): bounded work on any line. */
  lineContextChars: 4096,
  /** Documents above this many characters are not completed (generated data, dumps). */
  maxDocumentChars: 1_000_000,
  /** The n-gram model's order. */
  ngramOrder: 4,
  /** Held-out tokens the mixture weights are fitted on, at most (each checkpoint load). */
  fitTokens: 16_384,
  /** Slice of train.bin (its last files, at most this many tokens) the n-gram cache is tuned on. */
  cacheTuneTokens: 200_000,
  /**
   * Training tokens the n-gram model counts at most. Counting needs ~200 bytes per token at its
   * peak, so 4M tokens (12–15 MB of code, far beyond the few-MB projects this is for) stay under
   * ~1 GB; a larger train.bin contributes whole files spread evenly across it.
   */
  maxNgramTokens: 4_000_000,
} as const;

/** The EM fit of the mixture's weights (ml/mixture.ts). */
export const MIXTURE_FIT = {
  /** A bucket with fewer held-out tokens than this uses the pooled weight (and the copy model with fewer matches is left out). */
  minBucketTokens: 200,
  iterations: 60,
  /** Weights stay inside [floor, 1 − floor]: neither model is ever silenced completely. */
  weightFloor: 0.02,
} as const;

/** `workspace-lm eval`'s defaults. */
export const EVAL_DEFAULTS = {
  /** Next-line cut points. */
  cuts: 300,
  seed: 0,
  /** Bytes of files scored for loss and bits per byte at most (a deterministic sample beyond). */
  maxBytes: 1_000_000,
} as const;

/** 'line': complete the current line; 'block': possibly several lines of a block. */
export const COMPLETION_MODES = ['line', 'block'] as const;
export type CompletionMode = (typeof COMPLETION_MODES)[number];

/**
 * Which model completes (ml/servedModel.ts). 'served': the GPT mixed with the run's n-gram and copy
 * models, with the weights fitted when the checkpoint is loaded (what training produces); 'gpt':
 * the network alone; 'counts': the n-gram and copy models without the network. The last two are
 * ways to compare.
 */
export const COMPLETION_MODELS = ['served', 'gpt', 'counts'] as const;
export type CompletionModelKind = (typeof COMPLETION_MODELS)[number];

/** Completion settings (the extension maps its `workspaceLm.completions.*` settings onto these; LSP clients send them). */
export interface CompletionSettings {
  enabled: boolean;
  mode: CompletionMode;
  /** New tokens per completion at most. */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** Wait this long after a request before decoding; a newer request in that time replaces it. */
  debounceMs: number;
  /** Suggestions whose mean token log-probability is below this are dropped as junk. */
  minMeanLogProb: number;
  /** Language ids with completions turned off. */
  disabledLanguages: string[];
  /** Which model completes: 'served' (as trained), or an ablation to compare. */
  model: CompletionModelKind;
}

/** The completion settings a client gets unless it says otherwise (the extension's package.json mirrors them; a test checks). */
export const DEFAULT_COMPLETION_SETTINGS: CompletionSettings = {
  enabled: true,
  mode: 'line',
  // A line is typically 10–40 tokens; 48 leaves room without letting a bad guess run on.
  maxTokens: 48,
  temperature: 0,
  topP: 1,
  // Short: most clients debounce too; this only merges bursts of keystrokes.
  debounceMs: 10,
  // About e^-2.5 ≈ 8% average token probability: below that suggestions are mostly noise.
  minMeanLogProb: -2.5,
  disabledLanguages: ['plaintext', 'markdown'],
  model: 'served',
};

export function isPresetName(name: string): name is PresetName {
  return Object.prototype.hasOwnProperty.call(PRESETS, name);
}

/**
 * The largest model this code builds or loads. A config.json comes from wherever a model folder
 * came from, and its numbers size every allocation (a layout entry per layer, the weights, an
 * inference session's caches): `n_layer: 1e8` alone would build a billion objects and end the
 * process with an uncatchable out-of-memory. Each bound is far above what trains on a CPU and
 * at least GPT-2 large's (36 layers, d 1280, 20 heads, context 1024).
 */
export const MODEL_LIMITS = {
  /** Token ids are uint16 in train.bin / val.bin (nanoGPT layout). */
  vocabSize: 65_536,
  /** Positions: GPT-2's 1024 ×8; the attention scratch bound below is what limits long contexts with many heads. */
  contextLength: 8192,
  /** GPT-2 XL's width is 1600; 4096 is a 7B-class width. */
  dModel: 4096,
  /** GPT-2 XL has 48. */
  nLayer: 64,
  /** GPT-2 XL has 25; more than 64 heads at these widths is no model anyone trains. */
  nHead: 64,
  /**
   * Floats an inference session allocates for one sequence of the full context: the attention
   * scratch (nHead × context²) plus the KV cache (2 × nLayer × context × dModel). 2^27 floats =
   * 512 MB; GPT-2 large needs ~115M, our presets under 1M.
   */
  sessionFloats: 2 ** 27,
} as const;

export function validateModelConfig(cfg: ModelConfig): void {
  const ints: (keyof ModelConfig)[] = ['vocabSize', 'contextLength', 'dModel', 'nLayer', 'nHead'];
  for (const k of ints) {
    const v = cfg[k];
    if (!Number.isInteger(v) || v <= 0) throw new Error(`model config: ${k} must be a positive integer, got ${String(v)}`);
    // Checked before any product below: every one of them then stays an exact integer.
    if (v > MODEL_LIMITS[k]) {
      throw new Error(`model config: ${k} ${v} exceeds ${MODEL_LIMITS[k]}${k === 'vocabSize' ? ' (token ids are uint16 in the dataset)' : ' (the largest model this build loads)'}`);
    }
  }
  if (cfg.dModel % cfg.nHead !== 0) {
    throw new Error(`model config: dModel ${cfg.dModel} is not divisible by nHead ${cfg.nHead}`);
  }
  const session = cfg.nHead * cfg.contextLength ** 2 + 2 * cfg.nLayer * cfg.contextLength * cfg.dModel;
  if (session > MODEL_LIMITS.sessionFloats) {
    throw new Error(`model config: ${cfg.nHead} heads × context ${cfg.contextLength} with ${cfg.nLayer} layers of width ${cfg.dModel} need ${session} floats of attention scratch and KV cache per sequence, more than ${MODEL_LIMITS.sessionFloats}`);
  }
}

/** Hugging Face GPT-2 config.json for a model of this shape (what PyTorch readers expect). */
export function toHfConfig(cfg: ModelConfig): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: cfg.vocabSize,
    n_positions: cfg.contextLength,
    n_ctx: cfg.contextLength,
    n_embd: cfg.dModel,
    n_layer: cfg.nLayer,
    n_head: cfg.nHead,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: LAYERNORM_EPS,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
  };
}

/** Inverse of toHfConfig; accepts any GPT-2 config.json and checks what we support (and MODEL_LIMITS). */
export function fromHfConfig(json: unknown): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('config.json: expected a JSON object');
  const j = json as Record<string, unknown>;
  const own = (key: string): unknown => (Object.prototype.hasOwnProperty.call(j, key) ? j[key] : undefined);
  // What a config says is echoed in errors: short, on one line (a config.json could hold anything).
  const shown = (v: unknown): string => {
    const t = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
    return (t.length > 40 ? t.slice(0, 40) + '…' : t).replace(/[\u0000-\u001f\u007f]/g, '?');
  };
  if (own('model_type') !== undefined && own('model_type') !== 'gpt2') {
    throw new Error(`config.json: model_type "${shown(own('model_type'))}" is not supported (expected "gpt2")`);
  }
  const num = (key: string): number => {
    const v = own(key);
    if (typeof v !== 'number') throw new Error(`config.json: missing numeric "${key}"`);
    return v;
  };
  const act = own('activation_function');
  if (act !== undefined && act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw new Error(`config.json: activation_function "${shown(act)}" is not supported (expected "gelu_new")`);
  }
  const inner = own('n_inner');
  if (inner !== undefined && inner !== null && inner !== 4 * num('n_embd')) {
    throw new Error('config.json: n_inner other than 4*n_embd is not supported');
  }
  const cfg: ModelConfig = {
    vocabSize: num('vocab_size'),
    contextLength: num('n_positions'),
    dModel: num('n_embd'),
    nLayer: num('n_layer'),
    nHead: num('n_head'),
  };
  const keys: Record<keyof ModelConfig, string> = { vocabSize: 'vocab_size', contextLength: 'n_positions', dModel: 'n_embd', nLayer: 'n_layer', nHead: 'n_head' };
  try {
    validateModelConfig(cfg);
  } catch (e) {
    // In config.json's own words.
    let m = (e as Error).message.replace(/^model config: /, '');
    for (const [k, hf] of Object.entries(keys)) m = m.replace(new RegExp(`\\b${k}\\b`, 'g'), hf);
    throw new Error(`config.json: ${m}`);
  }
  return cfg;
}
