// Training inside the language server: one run at a time, controlled by requests (start, pause,
// resume, stop), reported as a TrainingStatus (pushed a few times per second at most, at once on
// a change of state) and a TrainingSnapshot (the whole chart history, for a reopened sidebar).
// The run's heavy work happens in the training pool's threads; this only keeps the books.

import * as path from 'node:path';
import { DEFAULT_PRESET, isPresetName } from '../ml/config';
import type { TrainEvent } from '../shared/trainEvents';
import type { LossPoint, StartTrainingParams, TrainingSnapshot, TrainingStatus, ValPoint } from '../shared/protocol';
import { runTraining } from '../training/trainer';
import { TrainControl } from '../training/trainControl';
import type { TrainerState } from '../run/checkpoint';
import { readEvalReport, summarizeEval } from '../run/evalReport';
import { STATE_FILE } from '../run/layout';
import { parseJsonFile, readRegularFile, READ_LIMITS } from '../run/safeRead';

/** Chart points kept in memory; older ones are thinned (every other point) beyond this. */
const MAX_POINTS = 2000;
/** Status notifications at most this often (state changes are sent at once). */
const STATUS_INTERVAL_MS = 250;

export class TrainingService {
  private control: TrainControl | null = null;
  private running: Promise<void> | null = null;
  private status: TrainingStatus = { state: 'idle', message: 'not trained yet' };
  private history: LossPoint[] = [];
  private evals: ValPoint[] = [];
  private pendingPoints: LossPoint[] = [];
  private pendingVal: ValPoint[] = [];
  private snapshotExtra: Omit<TrainingSnapshot, 'status' | 'history' | 'evals'> = {};
  private lastSent = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly publish: (s: TrainingStatus) => void,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  get state(): TrainingStatus['state'] {
    return this.status.state;
  }

  /** Starts a run (or resumes one from its checkpoint). Refuses while another run is active. */
  async start(p: StartTrainingParams): Promise<TrainingStatus> {
    if (this.running !== null) return { ...this.status, message: `already ${this.status.state}: stop the current run first` };
    if (!Array.isArray(p?.folders) || p.folders.length === 0 || typeof p.outDir !== 'string') {
      throw new Error('startTraining needs { folders: string[], outDir: string }');
    }
    const preset = p.preset ?? DEFAULT_PRESET;
    if (!isPresetName(preset)) throw new Error(`unknown preset ${String(preset)}`);
    const control = new TrainControl();
    this.control = control;
    // A resumed run continues its chart: start from the saved history (trimmed or dropped when
    // the trainer reports where it actually resumed, see the 'model' event).
    this.history = [];
    this.evals = [];
    const unreadable = p.resume !== false && p.retrain !== true ? await this.loadSaved(p.outDir, false) : null;
    this.snapshotExtra = { outDir: p.outDir };
    // The run itself resumes from its verified checkpoint (or starts over); only the chart's past is lost.
    const note = unreadable !== null ? ` (the earlier chart is lost: ${unreadable})` : '';
    this.set({ state: 'preparing', message: `indexing the workspace${note}`, phase: 'indexing', phaseFraction: 0 }, true);
    const train = { maxMinutes: p.maxMinutes, maxSteps: p.maxSteps, epochs: typeof p.epochs === 'number' && p.epochs > 0 ? p.epochs : undefined };
    this.running = runTraining(
      {
        folders: p.folders, outDir: p.outDir, preset, resume: p.retrain === true ? false : p.resume ?? true, retrain: p.retrain === true, control,
        ...(p.threads !== undefined ? { threads: p.threads } : {}), train,
        ...(p.allowHomeOrRoot === true ? { allowHomeOrRoot: true } : {}),
        ...(typeof p.memoryCapMb === 'number' && p.memoryCapMb >= 256 ? { memoryCapMb: p.memoryCapMb } : {}),
        ...(Array.isArray(p.excludeGlobs) ? { excludeGlobs: p.excludeGlobs.filter((g) => typeof g === 'string') } : {}),
        ...(Array.isArray(p.includeGlobs) && p.includeGlobs.length > 0 ? { includeGlobs: p.includeGlobs.filter((g) => typeof g === 'string') } : {}),
      },
      (e) => this.onEvent(e),
    ).then(
      () => undefined,
      (e: unknown) => this.set({ state: 'error', message: (e as Error).message }, true),
    ).finally(() => {
      this.running = null;
      this.control = null;
    });
    return this.status;
  }

  pause(): TrainingStatus {
    if (this.control !== null && this.status.state === 'training') {
      this.control.pause();
      this.set({ ...this.status, message: 'pausing after this step' }, true);
    }
    return this.status;
  }

  resume(): TrainingStatus {
    if (this.control !== null && this.control.paused) this.control.resume();
    return this.status;
  }

  stop(): TrainingStatus {
    if (this.control !== null) {
      this.control.stop();
      this.set({ ...this.status, state: 'stopping', message: 'saving a checkpoint and stopping' }, true);
    }
    return this.status;
  }

  /** Waits for the active run to end (tests, shutdown). */
  async idle(): Promise<void> {
    await this.running;
  }

  /** Everything for a sidebar; when no run is active, the history of the run in `outDir` from its trainer state. */
  async snapshot(outDir?: string): Promise<TrainingSnapshot> {
    if (this.running === null && this.history.length === 0 && outDir !== undefined) {
      const unreadable = await this.loadSaved(outDir, true);
      // Reported where the user looks: the status bar and the sidebar (a new run replaces it).
      if (unreadable !== null && this.status.state === 'idle') this.set({ state: 'error', message: unreadable }, true);
    }
    const dir = outDir ?? this.snapshotExtra.outDir;
    let evalError: string | null = null;
    const report = dir === undefined ? null : await readEvalReport(dir).catch((err: unknown) => {
      evalError = (err as Error).message;
      this.log(evalError);
      return null;
    });
    const e = report !== null ? summarizeEval(report) : null;
    return {
      status: this.status, history: this.history, evals: this.evals, ...this.snapshotExtra,
      ...(e !== null ? {
        eval: {
          bitsPerByte: e.bits_per_byte, exactMatch: e.exact_match, editSimilarity: e.edit_similarity, baselineBitsPerByte: e.baseline.bits_per_byte, baselineExactMatch: e.baseline.exact_match, cuts: e.cuts, step: e.step,
          ...(e.gpt_exact_match !== null ? { gptExactMatch: e.gpt_exact_match } : {}),
          ...(e.counts !== null ? { countsExactMatch: e.counts.exact_match, countsBitsPerByte: e.counts.bits_per_byte } : {}),
        },
      } : {}),
      ...(evalError !== null ? { evalError } : {}),
    };
  }

  /**
   * Loads the chart and figures of the run in `outDir` from its trainer state. Returns null when
   * done, or when there is no run yet (nothing to show); otherwise what went wrong (also logged).
   */
  private async loadSaved(outDir: string, setStatus = true): Promise<string | null> {
    const file = path.join(outDir, STATE_FILE);
    try {
      const s = parseJsonFile(await readRegularFile(file, READ_LIMITS.state, { allowSymlinkWithin: outDir }), file) as TrainerState;
      this.history = (s.history ?? []).map((h) => ({ step: h.step, loss: h.loss }));
      this.evals = (s.evals ?? []).map((e) => ({ step: e.step, valLoss: e.valLoss }));
      this.snapshotExtra = { outDir };
      if (setStatus && this.status.state === 'idle') {
        this.status = {
          state: 'ready', message: `model at step ${s.step}`, step: s.step, totalSteps: s.totalSteps,
          ...(s.lastLoss !== null ? { loss: s.lastLoss } : {}), ...(s.lastValLoss !== null ? { valLoss: s.lastValLoss } : {}),
        };
      }
      return null;
    } catch (e) {
      // No run yet (never trained, or an imported model, which has no trainer state): nothing to show.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      const message = `could not read the saved training state ${file}: ${(e as Error).message}`;
      this.log(message);
      return message;
    }
  }

  private onEvent(e: TrainEvent): void {
    switch (e.event) {
      case 'phase':
        if (e.phase === 'done') return;
        if (e.phase === 'training') this.set({ ...this.status, state: 'training', phase: 'training', message: 'training' }, true);
        else this.set({ state: 'preparing', phase: e.phase, phaseFraction: 0, message: e.phase }, true);
        return;
      case 'progress':
        if (e.phase !== 'done') this.set({ ...this.status, phaseFraction: e.fraction, message: `${e.phase}${e.detail ? ` (${e.detail})` : ` ${Math.round(e.fraction * 100)}%`}` }, false);
        return;
      case 'corpus':
        this.snapshotExtra.corpus = { files: e.files, bytes: e.bytes, trainFiles: e.train_files, valFiles: e.val_files, skipped: e.skipped, secrets: e.secrets };
        return;
      case 'dataset':
        this.snapshotExtra.dataset = { trainTokens: e.train_tokens, valTokens: e.val_tokens };
        return;
      case 'model':
        if (e.resumed_from_step === 0) {
          this.history = [];
          this.evals = [];
        } else {
          this.history = this.history.filter((h) => h.step <= e.resumed_from_step);
          this.evals = this.evals.filter((h) => h.step <= e.resumed_from_step);
        }
        this.snapshotExtra.model = { params: e.params, nLayer: e.n_layer, nHead: e.n_head, nEmbd: e.n_embd, context: e.context, vocabSize: e.vocab_size, batch: e.batch, engine: e.engine };
        this.status = { ...this.status, totalSteps: e.total_steps, step: e.resumed_from_step };
        return;
      case 'step': {
        const point = { step: e.step, loss: e.loss };
        this.history.push(point);
        if (this.history.length > MAX_POINTS) this.history = this.history.filter((_, i) => i % 2 === 0);
        this.pendingPoints.push(point);
        this.set({
          ...this.status, state: 'training', phase: 'training', message: 'training', step: e.step, totalSteps: e.total_steps, loss: e.loss,
          tokensPerSec: e.tokens_per_s, elapsedSec: e.elapsed_s, etaSec: e.eta_s,
        }, false);
        return;
      }
      case 'eval': {
        const p = { step: e.step, valLoss: e.val_loss };
        this.evals.push(p);
        this.pendingVal.push(p);
        this.set({ ...this.status, valLoss: e.val_loss }, false);
        return;
      }
      case 'paused':
        this.set({ ...this.status, state: 'paused', message: `paused at step ${e.step}` }, true);
        return;
      case 'resumed':
        this.set({ ...this.status, state: 'training', message: 'training' }, true);
        return;
      case 'warning':
        this.set({ ...this.status, message: e.message }, false);
        return;
      case 'checkpoint':
        return;
      case 'done':
        this.set({
          ...this.status, state: 'ready', phase: undefined, etaSec: 0,
          message: `${e.stopped ? 'stopped' : 'done'} at step ${e.steps}: train loss ${e.train_loss?.toFixed(3) ?? '-'}, val loss ${e.val_loss?.toFixed(3) ?? '-'}`,
          ...(e.val_loss !== null ? { valLoss: e.val_loss } : {}),
        }, true);
        return;
    }
  }

  /** Updates the status; publishes now if `urgent` or the interval has passed, else soon. */
  private set(s: TrainingStatus, urgent: boolean): void {
    const stateChanged = s.state !== this.status.state;
    this.status = s;
    const now = Date.now();
    if (urgent || stateChanged || now - this.lastSent >= STATUS_INTERVAL_MS) {
      this.flush();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), STATUS_INTERVAL_MS - (now - this.lastSent));
    }
  }

  private flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.lastSent = Date.now();
    const s: TrainingStatus = { ...this.status };
    if (this.pendingPoints.length > 0) s.newPoints = this.pendingPoints;
    if (this.pendingVal.length > 0) s.newValPoints = this.pendingVal;
    this.pendingPoints = [];
    this.pendingVal = [];
    this.publish(s);
  }
}
