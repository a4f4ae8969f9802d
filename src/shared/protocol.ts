// The language server's own protocol, on top of LSP: settings, initialization options and custom
// notifications. Declared once here; the server and every client (the VS Code extension, tests,
// other editors' configs) use these names and shapes.


export type { CompletionMode, CompletionSettings } from '../ml/config';
import type { CompletionSettings } from '../ml/config';

/** `initializationOptions` of the initialize request. */
export interface InitializationOptions {
  /** A checkpoint or run directory to serve (default: `<workspace root>/.workspace-lm`). */
  modelDir?: string;
  settings?: Partial<CompletionSettings>;
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
  preset?: 'tiny' | 'small' | 'seed';
  threads?: number;
  maxMinutes?: number;
  maxSteps?: number;
  /** Passes over the data (default: the preset's). */
  epochs?: number;
  /** Memory budget of the training process (MB); a larger workspace trains on a sample. */
  memoryCapMb?: number;
  /** Continue the run in outDir from its newest checkpoint (if any). */
  resume?: boolean;
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
  phase?: 'indexing' | 'tokenizer' | 'encoding' | 'training';
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
  eval?: { bitsPerByte: number; exactMatch: number; editSimilarity: number; baselineBitsPerByte: number; baselineExactMatch: number; cuts: number; step: number | null; gptExactMatch?: number };
}

export const Methods = {
  /** Server → client notification, ModelStatusParams. */
  modelStatus: 'workspaceLm/modelStatus',
  /** Client → server notification, Partial<CompletionSettings>. */
  updateSettings: 'workspaceLm/updateSettings',
  /** Client → server request, StartTrainingParams → TrainingStatus. */
  startTraining: 'workspaceLm/startTraining',
  /** Client → server requests, no params → TrainingStatus. */
  pauseTraining: 'workspaceLm/pauseTraining',
  resumeTraining: 'workspaceLm/resumeTraining',
  stopTraining: 'workspaceLm/stopTraining',
  /** Client → server request, { outDir?: string } → TrainingSnapshot. */
  trainingSnapshot: 'workspaceLm/trainingSnapshot',
  /** Server → client notification, TrainingStatus. */
  trainingStatus: 'workspaceLm/trainingStatus',
  /** Client → server request, { runDir, toDir } → { dir, files } (the PyTorch bundle). */
  exportBundle: 'workspaceLm/exportBundle',
  /** Client → server request, { srcDir, runDir } → { checkpoint } (a trained model to serve). */
  importModel: 'workspaceLm/importModel',
} as const;
