// The training loop: steps until done, stopped or out of time; evaluates, checkpoints and
// reports along the way; skips diverging steps with the learning rate halved.

import { promises as fs } from 'node:fs';
import type { ModelConfig, TrainConfig } from '../ml/config';
import type { BatchLoader } from '../ml/dataset';
import { learningRate, LrSchedule } from '../ml/adamw';
import { Rng } from '../ml/rng';
import type { TrainEventSink } from '../shared/trainEvents';
import { EvalPoint, HistoryPoint, saveCheckpoint, TrainerState } from '../run/checkpoint';
import { runPaths } from '../run/layout';
import type { TrainEngine } from './trainEngine';
import type { Prepared } from './runDataset';
import type { TrainOptions } from './runOptions';

/** Consecutive diverging steps (each skipped, with the learning rate halved) before a run stops. */
const MAX_BAD_STEPS = 4;

/** History kept in trainer_state.json: downsampled so it stays small on long runs. */
const MAX_HISTORY = 2000;

export interface LoopContext {
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
export async function trainLoop(c: LoopContext): Promise<void> {
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
  // The mixture loss's inputs, refilled with each batch (a run saved before the option: plain share 0).
  const mixture = loader.hasOdds ? { odds: new Float32Array(B * T), plainShare: train.mixturePlainShare ?? 0 } : undefined;
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
    loader.next(ids, targets, mixture?.odds);
    const { loss, gradNorm } = await engine.step(ids, targets, hyper, train.gradClip, mixture);
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
