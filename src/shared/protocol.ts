// The language server's own protocol, on top of LSP: settings, initialization options and the
// custom requests and notifications. Declared once here, as typed RequestType/NotificationType
// objects (method name, params and result together); the server registers handlers with them
// (`connection.onRequest(StartTrainingRequest, …)`) and every client sends with them
// (`client.sendRequest(StartTrainingRequest, …)`): the VS Code extension and the tests.

import { NotificationType, RequestType, RequestType0 } from 'vscode-languageserver-protocol';
import type { PresetName } from '../ml/config';

export type { PresetName };

export type { CompletionMode, CompletionModelKind, CompletionSettings } from '../ml/config';
import type { CompletionSettings } from '../ml/config';

/** `initializationOptions` of the initialize request. */
export interface InitializationOptions {
  /** A checkpoint or run directory to serve (default: the workspace root's run in the user's runs folder, run/layout.ts defaultRunDir). */
  modelDir?: string;
  settings?: Partial<CompletionSettings>;
}

/** `workspace/didChangeConfiguration` settings: the completion settings, under `workspaceLm`. */
export interface WorkspaceLmConfiguration {
  workspaceLm?: Partial<CompletionSettings>;
}

export type ModelState = 'no-model' | 'loading' | 'ready' | 'error';

/** Server → client: what the completion model is doing, so the client can show it (not per keystroke). */
export interface ModelStatusParams {
  state: ModelState;
  message: string;
  model?: { dir: string; step: number | null; valLoss: number | null; params: number };
}

/** What the status bar, the sidebar and the commands know about training. */
export type TrainingState = 'idle' | 'preparing' | 'training' | 'paused' | 'stopping' | 'ready' | 'error';

export interface StartTrainingParams {
  /** Folders to train on (the workspace folders); the first one's name labels the run. */
  folders: string[];
  /** Where the run lives (the extension's storageUri, never the user's repository). */
  outDir: string;
  preset?: PresetName;
  threads?: number;
  maxMinutes?: number;
  maxSteps?: number;
  /** Passes over the data (default: the preset's). */
  epochs?: number;
  /** Memory budget of the training process (MB); a larger workspace trains on a sample. */
  memoryCapMb?: number;
  /** Continue the run in outDir from its newest checkpoint (if any). */
  resume?: boolean;
  /** Train a folder that is the home folder, an ancestor of it, or a filesystem root (refused otherwise). */
  allowHomeOrRoot?: boolean;
  /** Retrain on changes: a new run from the previous model's weights, re-reading only changed files. */
  retrain?: boolean;
  /** Extra exclude globs (VS Code's files.exclude and the extension's settings). */
  excludeGlobs?: string[];
  includeGlobs?: string[];
}

/** A point of the loss chart. */
export interface LossPoint { step: number; loss: number }
export interface ValPoint { step: number; valLoss: number }

/** The training status, pushed (at most a few times per second) and also returned on request. */
export interface TrainingStatus {
  state: TrainingState;
  /** Human-readable detail: the phase, an error message, why training is unavailable. */
  message: string;
  phase?: 'indexing' | 'tokenizer' | 'encoding' | 'counts' | 'training';
  /** 0..1 within the current preparation phase. */
  phaseFraction?: number;
  step?: number;
  totalSteps?: number;
  loss?: number;
  valLoss?: number;
  tokensPerSec?: number;
  elapsedSec?: number;
  etaSec?: number;
  /** The newest chart points since the previous status (the webview appends them). */
  newPoints?: LossPoint[];
  newValPoints?: ValPoint[];
}

/** Everything the sidebar shows, for a (re)opened webview: from the server, not the webview's memory. */
export interface TrainingSnapshot {
  status: TrainingStatus;
  history: LossPoint[];
  evals: ValPoint[];
  corpus?: { files: number; bytes: number; trainFiles: number; valFiles: number; skipped: Record<string, { files: number; bytes: number }>; secrets?: Record<string, number> };
  dataset?: { trainTokens: number; valTokens: number };
  model?: { params: number; nLayer: number; nHead: number; nEmbd: number; context: number; vocabSize: number; batch: number; engine: string };
  outDir?: string;
  /** The latest `workspace-lm eval` of this run: the model against the n-gram baseline. */
  eval?: { bitsPerByte: number; exactMatch: number; editSimilarity: number; baselineBitsPerByte: number; baselineExactMatch: number; cuts: number; step: number | null; gptExactMatch?: number; countsExactMatch?: number; countsBitsPerByte?: number };
  /** Why the latest eval cannot be shown (a damaged eval.json). */
  evalError?: string;
}

/** Params of TrainingSnapshotRequest: the run to describe when none is active (its saved chart). */
export interface TrainingSnapshotParams { outDir?: string }

export interface ExportBundleParams {
  /** The run whose newest checkpoint is exported. */
  runDir: string;
  /** Where the PyTorch training bundle is written. */
  toDir: string;
}
export interface ExportBundleResult {
  dir: string;
  /** Files written, relative to dir. */
  files: string[];
}

export interface DeleteModelParams {
  /** The run folder to delete (the one the client passed as modelDir, or a training run's outDir). */
  runDir: string;
}

export interface ImportModelParams {
  /** A trained model folder (model.safetensors, config.json, tokenizer.json). */
  srcDir: string;
  /** The run it becomes the newest checkpoint of. */
  runDir: string;
}
export interface ImportModelResult {
  /** The new checkpoint directory. */
  checkpointDir: string;
  step: number;
}

/** Server → client: what the completion model is doing (on a change of state, not per keystroke). */
export const ModelStatusNotification = new NotificationType<ModelStatusParams>('workspaceLm/modelStatus');
/** Server → client: the training status, at most a few times per second (at once on a change of state). */
export const TrainingStatusNotification = new NotificationType<TrainingStatus>('workspaceLm/trainingStatus');
/** Client → server: new completion settings, merged over the current ones (bad fields are ignored). */
export const UpdateSettingsNotification = new NotificationType<Partial<CompletionSettings>>('workspaceLm/updateSettings');
/** Client → server: start (or resume) a run; answers the status (`already …` while one is active). */
export const StartTrainingRequest = new RequestType<StartTrainingParams, TrainingStatus, void>('workspaceLm/startTraining');
export const PauseTrainingRequest = new RequestType0<TrainingStatus, void>('workspaceLm/pauseTraining');
export const ResumeTrainingRequest = new RequestType0<TrainingStatus, void>('workspaceLm/resumeTraining');
/** Saves a checkpoint and ends the run. */
export const StopTrainingRequest = new RequestType0<TrainingStatus, void>('workspaceLm/stopTraining');
/** Everything the sidebar shows, for a (re)opened view. */
export const TrainingSnapshotRequest = new RequestType<TrainingSnapshotParams, TrainingSnapshot, void>('workspaceLm/trainingSnapshot');
/** Writes the PyTorch training bundle of a run. */
export const ExportBundleRequest = new RequestType<ExportBundleParams, ExportBundleResult, void>('workspaceLm/exportBundle');
/** Makes a trained model folder the run's newest checkpoint (so it is served). */
export const ImportModelRequest = new RequestType<ImportModelParams, ImportModelResult, void>('workspaceLm/importModel');
/** Client → server: stop any run, unload the served model at once, and delete the run folder. */
export const DeleteModelRequest = new RequestType<DeleteModelParams, void, void>('workspaceLm/deleteModel');
