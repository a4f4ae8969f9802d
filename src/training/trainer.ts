// One training run, start to finish: index the folder, train the tokenizer, encode the by-file
// split, train the model, evaluate and checkpoint. Reports every step through TrainEvents and
// stops cleanly (with a checkpoint) when its AbortSignal fires. Used by the CLI now and by the
// language server later; no terminal or editor code here.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_FANOUT, DEFAULT_MEMORY_CAP_MB, DEFAULT_TRAIN, ModelConfig, parameterCount, PREP_BYTES_PER_SOURCE_BYTE, PRESETS, PresetName, TrainConfig } from '../ml/config';
import { BpeTokenizer } from '../ml/bpe';
import { BatchLoader, tokensFromBytes, validationBatches } from '../ml/dataset';
import { Gpt } from '../ml/gpt';
import { AdamW, learningRate, LrSchedule } from '../ml/adamw';
import { Rng } from '../ml/rng';
import type { TrainEventSink } from '../shared/trainEvents';
import { Worker } from 'node:worker_threads';
import { buildDataset, BuildInput, BuildOutput, BuildStats } from '../corpus/datasetBuilder';
import { distPath } from '../runtime/distFiles';
import { PER_THREAD_PRIORITY } from '../runtime/priority';
import type { PrepareMessage } from '../shared/poolProtocol';
import { createEngine, TrainEngine } from './trainEngine';
import type { TrainControl } from './trainControl';
import { EvalPoint, HistoryPoint, listCheckpoints, loadCheckpoint, saveCheckpoint, TrainerState } from '../run/checkpoint';
import { writeAtomic } from '../run/atomicFile';
import { DATASET_FORMAT, DatasetMeta, runPaths } from '../run/layout';

export interface TrainOptions {
  /** Folders to train on (a multi-root workspace has several). */
  folders: string[];
  outDir: string;
  preset: PresetName;
  /** Overrides of the preset's training config (CLI flags). */
  train?: Partial<TrainConfig>;
  resume: boolean;
  /** Worker threads (default: all cores, at low priority; see defaultThreads). */
  threads?: number;
  /** Leaders around the root of the gradient reduction tree. */
  fanout?: number;
  /** VS Code's files.exclude/search.exclude and the extension's own globs. */
  excludeGlobs?: string[];
  includeGlobs?: string[];
  /** User-supplied secret patterns (regex sources), redacted like the built-in rules. */
  extraSecretPatterns?: string[];
  /** Memory cap in MB (default DEFAULT_MEMORY_CAP_MB): a larger workspace trains on a sample. */
  memoryCapMb?: number;
  /** Stop (checkpoint and end) when aborted. */
  signal?: AbortSignal;
  /**
   * Retrain on changes: a new run on the current files that starts from the previous run's
   * weights and tokenizer (only changed files are re-read and re-encoded). Falls back to a run
   * from scratch when the code changed so much that the tokenizer had to be retrained.
   */
  retrain?: boolean;
  /** Pause/resume between steps (the language server's buttons); `signal` still stops. */
  control?: TrainControl;
  /** Builds the step engine (default: the worker pool); fault-injection tests wrap it. */
  engineFactory?: typeof createEngine;
}

/**
 * Every core on Linux, where the training threads lower their own priority (TRAINING_THREAD_NICE),
 * so the editor, the shell and the completion server win whenever they want a core and idle cores
 * go to training. Elsewhere (no per-thread priority) all cores but one, at least one.
 */
export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism() - (PER_THREAD_PRIORITY ? 0 : 1));
}

/** Consecutive diverging steps (each skipped, with the learning rate halved) before a run stops. */
const MAX_BAD_STEPS = 4;

/** History kept in trainer_state.json: downsampled so it stays small on long runs. */
const MAX_HISTORY = 2000;

function tokensHash(train: Uint16Array, val: Uint16Array): string {
  return createHash('sha256')
    .update(new Uint8Array(train.buffer, train.byteOffset, train.byteLength))
    .update(new Uint8Array(val.buffer, val.byteOffset, val.byteLength))
    .digest('hex');
}

interface Prepared {
  tokenizer: BpeTokenizer;
  train: Uint16Array;
  val: Uint16Array;
  hash: string;
  /** How the dataset was built (absent when loaded as saved). */
  stats?: BuildStats;
}

/**
 * How much source the dataset may hold under the memory cap: what is left after the model's
 * weights, moments and per-thread gradients and a fixed runtime allowance, at
 * PREP_BYTES_PER_SOURCE_BYTE bytes of peak memory per source byte.
 */
function corpusBudget(opts: TrainOptions, vocabSize: number): { maxTotalBytes: number; memoryCapMb: number } {
  const capMb = opts.memoryCapMb ?? DEFAULT_MEMORY_CAP_MB;
  const params = parameterCount({ ...PRESETS[opts.preset].model, vocabSize });
  const threads = opts.threads ?? defaultThreads();
  const modelBytes = params * 4 * (3 + threads) + threads * 40e6;
  const left = capMb * 1e6 - modelBytes - 150e6;
  return { maxTotalBytes: Math.max(1e6, Math.floor(left / PREP_BYTES_PER_SOURCE_BYTE)), memoryCapMb: capMb };
}

/** Runs buildDataset in a worker thread (in-process if the worker bundle is missing). */
function buildInWorker(input: BuildInput, emit: TrainEventSink): Promise<BuildOutput> {
  const file = distPath('prepareWorker.js');
  if (file === null) return buildDataset(input, emit);
  return new Promise<BuildOutput>((resolve, reject) => {
    const worker = new Worker(file, { workerData: input });
    let settled = false;
    worker.on('message', (m: PrepareMessage) => {
      if (m.type === 'event') emit(m.event);
      else if (m.type === 'done') { settled = true; resolve(m.result); }
      else { settled = true; reject(new Error(m.message)); }
    });
    worker.on('error', (e) => { settled = true; reject(e); });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`the dataset worker exited (code ${code}) before finishing`));
    });
  });
}

/** Builds the dataset of the run's folders (tokenizer trained unless given) and writes data/. */
async function prepareDataset(opts: TrainOptions, vocabSize: number, emit: TrainEventSink, given: BpeTokenizer | null, retrainTokenizerOnDrift = false): Promise<Prepared> {
  const built = await buildInWorker({
    folders: opts.folders, excludeDirs: [path.resolve(opts.outDir)], vocabSize,
    tokenizerJson: given === null ? null : given.toHuggingFaceJSON(),
    retrainTokenizerOnDrift, cacheDir: runPaths(opts.outDir).data,
    ...(opts.excludeGlobs !== undefined ? { excludeGlobs: opts.excludeGlobs } : {}),
    ...(opts.includeGlobs !== undefined ? { includeGlobs: opts.includeGlobs } : {}),
    ...(opts.extraSecretPatterns !== undefined ? { extraSecretPatterns: opts.extraSecretPatterns } : {}),
    ...corpusBudget(opts, vocabSize),
  }, emit);
  const tokenizer = given !== null && !built.stats.tokenizerTrained ? given : BpeTokenizer.fromHuggingFaceJSON(built.tokenizerJson);
  const { train, val } = built;
  const hash = tokensHash(train, val);
  const run = runPaths(opts.outDir);
  await fs.mkdir(run.data, { recursive: true });
  await writeAtomic(run.trainBin, new Uint8Array(train.buffer, train.byteOffset, train.byteLength));
  await writeAtomic(run.valBin, new Uint8Array(val.buffer, val.byteOffset, val.byteLength));
  await writeAtomic(run.dataTokenizer, JSON.stringify(built.tokenizerJson));
  const meta: DatasetMeta = {
    format: DATASET_FORMAT, version: 1, vocab_size: tokenizer.vocabSize, eot_id: tokenizer.eotId,
    train_tokens: train.length, val_tokens: val.length, train_files: built.trainFiles, train_paths: built.trainPaths,
    val_files: built.valFiles, dataset_hash: hash, corpus_bytes: built.corpusBytes,
    folders: opts.folders.map((f) => path.resolve(f)),
  };
  // Written last: it vouches for the files above (readers look for it first).
  await writeAtomic(run.meta, JSON.stringify(meta, null, 1) + '\n');
  return { tokenizer, train, val, hash, stats: built.stats };
}

/** The dataset a checkpoint was trained on, if data/ still holds it unchanged. */
async function loadSavedDataset(outDir: string, hash: string, tokenizer: BpeTokenizer): Promise<Prepared | null> {
  const run = runPaths(outDir);
  try {
    const train = tokensFromBytes(await fs.readFile(run.trainBin));
    const val = tokensFromBytes(await fs.readFile(run.valBin));
    if (tokensHash(train, val) !== hash) return null;
    return { tokenizer, train, val, hash };
  } catch {
    return null;
  }
}

/**
 * Progress events are frequent (per merge, per file); pass on at most one per phase every 100 ms
 * plus every phase's first and last, so --json output and the UI stay small.
 */
function throttleProgress(emit: TrainEventSink): TrainEventSink {
  let last = 0;
  let lastPhase = '';
  return (e) => {
    if (e.event === 'progress') {
      const now = Date.now();
      if (e.phase === lastPhase && e.fraction < 1 && now - last < 100) return;
      last = now;
      lastPhase = e.phase;
    }
    emit(e);
  };
}

function resolveTrainConfig(preset: PresetName, overrides: Partial<TrainConfig> | undefined): TrainConfig {
  const cfg: TrainConfig = { ...DEFAULT_TRAIN, ...PRESETS[preset].train };
  for (const [k, v] of Object.entries(overrides ?? {})) if (v !== undefined) (cfg as unknown as Record<string, unknown>)[k] = v;
  return cfg;
}

/** Runs (or resumes) a training run. Resolves when done or stopped; throws with a clear message on bad input. */
export async function runTraining(opts: TrainOptions, rawEmit: TrainEventSink): Promise<void> {
  const outDir = path.resolve(opts.outDir);
  if (opts.folders.length === 0) throw new Error('no folder to train on');
  for (const folder of opts.folders) {
    const st = await fs.stat(folder).catch(() => null);
    if (st === null || !st.isDirectory()) throw new Error(`folder not found: ${path.resolve(folder)}`);
  }
  const emit = throttleProgress(rawEmit);
  await fs.mkdir(outDir, { recursive: true });
  // Keep run artifacts out of the user's git status when the out dir is inside their repo.
  await fs.writeFile(path.join(outDir, '.gitignore'), '*\n').catch(() => undefined);

  let train = resolveTrainConfig(opts.preset, opts.train);
  let modelCfg: ModelConfig = { ...PRESETS[opts.preset].model };
  // Where the weights come from: a checkpoint (with its optimizer moments) or a fresh init.
  let resumeFrom: { model: Gpt; optimizer: AdamW } | null = null;
  /** Retrain mode: weights to start a new run from (no optimizer state, new schedule). */
  let initFrom: Gpt | null = null;
  let state: TrainerState | null = null;
  let data: Prepared;

  const existing = await listCheckpoints(outDir);
  let ck = opts.resume && existing.length > 0 ? await loadCheckpoint(outDir, { withOptimizer: true }) : null;
  /** An imported model (weights, no training state) is continued as a new run from its weights. */
  let imported: Awaited<ReturnType<typeof loadCheckpoint>> | null = null;
  if (ck !== null && ck.state === null) {
    emit({ event: 'warning', message: `the newest model in ${outDir} was imported (no training state): training a new run from its weights` });
    imported = ck;
    ck = null;
  }
  if (ck !== null && ck.state !== null) {
    // A run that already reached its end (steps or time budget) is not resumed: train anew.
    const s0 = ck.state;
    const maxSteps = opts.train?.maxSteps ?? s0.train.maxSteps;
    const maxMinutes = opts.train?.maxMinutes ?? s0.train.maxMinutes;
    const outOfSteps = s0.step >= s0.totalSteps && !(maxSteps > s0.step);
    const outOfTime = maxMinutes > 0 && s0.elapsedSec >= maxMinutes * 60;
    if (outOfSteps || outOfTime) {
      emit({ event: 'warning', message: `the run in ${outDir} finished at step ${s0.step}: starting a new run` });
      ck = null;
    }
  }
  if (ck !== null) {
    for (const r of ck.rejected) emit({ event: 'warning', message: `skipped damaged checkpoint: ${r.reason}` });
    if (ck.state === null || ck.optimizer === null) throw new Error(`${ck.dir} has no trainer state: it cannot be resumed`);
    state = ck.state;
    resumeFrom = { model: ck.model, optimizer: ck.optimizer };
    modelCfg = ck.model.cfg;
    // The run keeps its own config; only limits given now (steps, minutes, …) change.
    train = { ...state.train };
    for (const [k, v] of Object.entries(opts.train ?? {})) if (v !== undefined) (train as unknown as Record<string, unknown>)[k] = v;
    const saved = await loadSavedDataset(outDir, state.datasetHash, ck.tokenizer);
    if (saved !== null) {
      data = saved;
      emit({ event: 'dataset', train_tokens: data.train.length, val_tokens: data.val.length, bytes_per_token: 0 });
    } else {
      data = await prepareDataset(opts, modelCfg.vocabSize, emit, ck.tokenizer);
      if (data.hash !== state.datasetHash) {
        emit({ event: 'warning', message: 'the folder changed since this run started: continuing on the new data (the data order restarts)' });
        state.cursor = { epoch: 0, index: 0 };
        state.datasetHash = data.hash;
      }
    }
  } else {
    if ((opts.resume || opts.retrain === true) && existing.length === 0) emit({ event: 'warning', message: `no checkpoint in ${outDir}: starting a new run` });
    const previous = imported ?? (opts.retrain === true && existing.length > 0 ? await loadCheckpoint(outDir) : null);
    // A previous run's checkpoints would look newer than this run's first ones: set them aside
    // (the last one stays usable until this run saves its own) and drop them after that save.
    if (existing.length > 0) {
      await fs.rm(runPaths(outDir).previousCheckpoints, { recursive: true, force: true });
      await fs.rename(runPaths(outDir).checkpoints, runPaths(outDir).previousCheckpoints);
    }
    data = await prepareDataset(opts, modelCfg.vocabSize, emit, previous?.tokenizer ?? null, previous !== null);
    if (previous !== null && data.stats?.tokenizerTrained === false) {
      // Same tokenizer: the previous weights are a good start on the changed code.
      modelCfg = previous.model.cfg;
      initFrom = previous.model;
      emit({ event: 'warning', message: `retraining from the previous model on the changed workspace (${data.stats.filesEncoded} files re-encoded, ${data.stats.filesReused} unchanged)` });
    } else {
      // A tiny corpus may support fewer merges than asked: the model follows the tokenizer.
      modelCfg = { ...modelCfg, vocabSize: data.tokenizer.vocabSize };
    }
  }

  emit({ event: 'phase', phase: 'training' });
  const B = train.batchSize;
  const T = Math.min(modelCfg.contextLength, Math.max(8, data.train.length - 1));
  if (data.train.length < 2) throw new Error('the training set is empty after tokenization: add source files to the folder');
  const loader = new BatchLoader(data.train, B, T, train.seed, { fimRate: train.fimRate ?? 0, fimFormat: train.fimFormat, tokenizer: data.tokenizer });
  if (state !== null) loader.restore(state.cursor);
  const valSet = validationBatches(data.val, B, T, train.evalBatches);
  const plannedSteps = Math.max(1, Math.round(train.epochs * loader.stepsPerEpoch));
  const totalSteps = train.maxSteps > 0 ? Math.min(train.maxSteps, plannedSteps) : plannedSteps;
  const warmupSteps = Math.max(1, Math.min(train.warmupMaxSteps, Math.round(train.warmupFraction * totalSteps)));
  const schedule: LrSchedule = { maxLr: train.learningRate, minLr: train.learningRate * train.minLrRatio, warmupSteps, totalSteps };
  const budgetSec = train.maxMinutes > 0 ? train.maxMinutes * 60 : 0;
  const { engine, fallbackReason } = (opts.engineFactory ?? createEngine)({ cfg: modelCfg, B, T, threads: opts.threads ?? defaultThreads(), fanout: opts.fanout ?? DEFAULT_FANOUT });
  if (fallbackReason !== null) emit({ event: 'warning', message: fallbackReason });
  const { model, optimizer } = engine;
  if (resumeFrom !== null) {
    model.params.set(resumeFrom.model.params);
    optimizer.m.set(resumeFrom.optimizer.m);
    optimizer.v.set(resumeFrom.optimizer.v);
    optimizer.step = resumeFrom.optimizer.step;
    resumeFrom = null; // let the checkpoint's copy be collected
  } else if (initFrom !== null) {
    model.params.set(initFrom.params);
    initFrom = null;
  } else {
    model.initWeights(new Rng(train.seed));
  }
  try {
    await trainLoop({ opts, emit, engine, train, modelCfg, state, data, loader, valSet, B, T, totalSteps, schedule, budgetSec, outDir });
  } finally {
    await engine.close();
  }
}

interface LoopContext {
  opts: TrainOptions;
  emit: TrainEventSink;
  engine: TrainEngine;
  train: TrainConfig;
  modelCfg: ModelConfig;
  state: TrainerState | null;
  data: Prepared;
  loader: BatchLoader;
  valSet: { ids: Int32Array; targets: Int32Array }[];
  B: number;
  T: number;
  totalSteps: number;
  schedule: LrSchedule;
  budgetSec: number;
  outDir: string;
}

/** Steps until done, stopped or out of time; evaluates, checkpoints and reports along the way. */
async function trainLoop(c: LoopContext): Promise<void> {
  const { opts, emit, engine, train, modelCfg, state, data, loader, valSet, B, T, totalSteps, schedule, budgetSec, outDir } = c;
  const { model, optimizer } = engine;
  const startStep = state?.step ?? 0;
  emit({
    event: 'model', engine: engine.description, params: model.numParams, n_layer: modelCfg.nLayer, n_head: modelCfg.nHead, n_embd: modelCfg.dModel,
    context: T, vocab_size: modelCfg.vocabSize, batch: B, total_steps: totalSteps, resumed_from_step: startStep,
  });

  const rng = state !== null ? Rng.fromState(state.rng) : new Rng(train.seed ^ 0x5eed);
  const history: HistoryPoint[] = state?.history ?? [];
  const evals: EvalPoint[] = state?.evals ?? [];
  let step = startStep;
  let tokensSeen = state?.tokensSeen ?? 0;
  const elapsedBefore = state?.elapsedSec ?? 0;
  const t0 = performance.now();
  let pausedMs = 0;
  // Training time: wall time of this session minus pauses, plus what earlier sessions trained.
  const elapsed = (): number => elapsedBefore + (performance.now() - t0 - pausedMs) / 1000;
  let lastLoss: number | null = state?.lastLoss ?? null;
  let lastValLoss: number | null = state?.lastValLoss ?? null;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  // Throughput over the recent steps (a window, so the figure follows changes in machine load).
  const recent: { t: number; tokens: number }[] = [];
  const hyper = { lr: 0, beta1: train.beta1, beta2: train.beta2, eps: train.eps, weightDecay: train.weightDecay };

  const evaluate = async (): Promise<void> => {
    if (valSet.length === 0) return;
    let sum = 0;
    for (const b of valSet) sum += await engine.evaluate(b.ids, b.targets);
    const v = sum / valSet.length;
    lastValLoss = v;
    evals.push({ step, valLoss: v });
    emit({ event: 'eval', step, val_loss: v });
  };

  const checkpoint = async (): Promise<void> => {
    const dir = await saveCheckpoint({
      runDir: outDir, model, optimizer, tokenizer: data.tokenizer,
      state: {
        step, totalSteps, tokensSeen, elapsedSec: elapsed(), cursor: loader.cursor(), rng: rng.state(),
        model: modelCfg, train, datasetHash: data.hash, lastLoss, lastValLoss, history, evals, lrScale,
      },
    }, train.keepCheckpoints);
    emit({ event: 'checkpoint', step, dir });
    await fs.rm(runPaths(outDir).previousCheckpoints, { recursive: true, force: true });
  };

  let stopped = false;
  let savedAt = -1;
  /** Learning-rate multiplier, halved after each diverging step (kept in checkpoints). */
  let lrScale = state?.lrScale ?? 1;
  let badSteps = 0;
  const stopRequested = (): boolean => opts.signal?.aborted === true || opts.control?.signal.aborted === true;
  while (step < totalSteps) {
    if (opts.control?.paused === true && !stopRequested()) {
      const p0 = performance.now();
      emit({ event: 'paused', step });
      await opts.control.waitWhilePaused();
      pausedMs += performance.now() - p0;
      recent.length = 0; // throughput restarts after a pause
      if (!stopRequested()) emit({ event: 'resumed', step });
    }
    if (stopRequested()) { stopped = true; break; }
    if (budgetSec > 0 && elapsed() >= budgetSec) break;
    const progress = Math.max(step / totalSteps, budgetSec > 0 ? elapsed() / budgetSec : 0);
    hyper.lr = learningRate(schedule, step, progress) * lrScale;
    loader.next(ids, targets);
    const { loss, gradNorm } = await engine.step(ids, targets, hyper, train.gradClip);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      // The engines skip the update on a non-finite loss or gradient, so the weights are still
      // the last good ones. Skip this batch and halve the learning rate; a run that keeps
      // diverging stops with a clear message (its last checkpoint is intact).
      badSteps++;
      if (badSteps >= MAX_BAD_STEPS) {
        throw new Error(`training diverged: ${badSteps} steps in a row gave a non-finite loss or gradient (last loss ${loss}, gradient norm ${gradNorm}) at step ${step + 1}; the last checkpoint is intact — try a lower learning rate`);
      }
      lrScale *= 0.5;
      emit({ event: 'warning', message: `step ${step + 1}: non-finite loss or gradient (loss ${loss}); skipped the update and halved the learning rate (now ×${lrScale})` });
      continue;
    }
    badSteps = 0;
    step++;
    tokensSeen += B * T;
    lastLoss = loss;
    const now = elapsed();
    recent.push({ t: now, tokens: tokensSeen });
    if (recent.length > 20) recent.shift();
    const first = recent[0]!;
    const tokensPerSec = recent.length > 1 ? (tokensSeen - first.tokens) / Math.max(1e-9, now - first.t) : (B * T) / Math.max(1e-9, now - elapsedBefore);
    const secPerStep = (B * T) / Math.max(1e-9, tokensPerSec);
    let eta = (totalSteps - step) * secPerStep;
    if (budgetSec > 0) eta = Math.min(eta, Math.max(0, budgetSec - now));
    if (history.length >= MAX_HISTORY) {
      // Downsample: keep every other point, so the history spans the whole run at half density.
      const kept = history.filter((_, i) => i % 2 === 0);
      history.length = 0;
      history.push(...kept);
    }
    history.push({ step, loss, lr: hyper.lr, tokensPerSec, elapsedSec: now });
    emit({ event: 'step', step, total_steps: totalSteps, epoch: loader.epochProgress, loss, lr: hyper.lr, grad_norm: gradNorm, tokens_per_s: tokensPerSec, elapsed_s: now, eta_s: eta });
    if (step % train.evalEvery === 0 || step === totalSteps) await evaluate();
    if (step % train.checkpointEvery === 0) {
      await checkpoint();
      savedAt = step;
    }
    // Let signals, timers and I/O run between steps (Ctrl-C, progress rendering).
    await new Promise((r) => setImmediate(r));
  }
  if (savedAt !== step) {
    if (evals.length === 0 || evals[evals.length - 1]!.step !== step) await evaluate();
    await checkpoint();
  }
  const total = elapsed();
  emit({
    event: 'done', steps: step, train_loss: lastLoss, val_loss: lastValLoss,
    tokens_per_s: (tokensSeen - (state?.tokensSeen ?? 0)) / Math.max(1e-9, total - elapsedBefore),
    elapsed_s: total, tokens_seen: tokensSeen, stopped, out_dir: outDir,
    // Whole process, worker threads included (they share its address space).
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  });
}
