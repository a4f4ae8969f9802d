// One training run, start to finish: index the folder, train the tokenizer, encode the by-file
// split, train the model, evaluate and checkpoint. Reports every step through TrainEvents and
// stops cleanly (with a checkpoint) when its AbortSignal fires. Used by the CLI now and by the
// language server later; no terminal or editor code here.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_FANOUT, DEFAULT_TRAIN, ModelConfig, PRESETS, PresetName, TrainConfig } from '../ml/config';
import { BatchLoader, validationBatches } from '../ml/dataset';
import { Gpt } from '../ml/gpt';
import { AdamW, LrSchedule } from '../ml/adamw';
import { Rng } from '../ml/rng';
import type { TrainEventSink } from '../shared/trainEvents';
import { listCheckpoints, loadCheckpoint, TrainerState } from '../run/checkpoint';
import { initRunDir, runPaths } from '../run/layout';
import { createEngine } from './trainEngine';
import { loadSavedDataset, prepareDataset, Prepared } from './runDataset';
import { defaultThreads, TrainOptions } from './runOptions';
import { trainLoop } from './trainLoop';
import { countsForLoss } from './countsForLoss';

export { defaultThreads };
export type { TrainOptions };

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
  await initRunDir(outDir);

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

  const B = train.batchSize;
  const T = Math.min(modelCfg.contextLength, Math.max(8, data.train.length - 1));
  if (data.train.length < 2) throw new Error('the training set is empty after tokenization: add source files to the folder');
  // A run saved before the loss option trained plain cross-entropy, and keeps doing so.
  const odds = train.loss === 'mixture' ? await countsForLoss(data.train, data.tokenizer.vocabSize, data.tokenizer.eotId, emit) : undefined;
  emit({ event: 'phase', phase: 'training' });
  const loader = new BatchLoader(data.train, B, T, train.seed, { fimRate: train.fimRate ?? 0, fimFormat: train.fimFormat, tokenizer: data.tokenizer }, odds);
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

