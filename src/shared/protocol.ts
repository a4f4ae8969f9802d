// The language server's own protocol, on top of LSP: settings, initialization options and custom
// notifications. Declared once here; the server and every client (the VS Code extension, tests,
// other editors' configs) use these names and shapes.

/** 'line': complete the current line; 'block': possibly several lines of a block. */
export type CompletionMode = 'line' | 'block';

/** Completion settings (the extension maps its `workspaceLm.*` settings onto these). */
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
}

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
};

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

export const Methods = {
  /** Server → client notification, ModelStatusParams. */
  modelStatus: 'workspaceLm/modelStatus',
  /** Client → server notification, Partial<CompletionSettings>. */
  updateSettings: 'workspaceLm/updateSettings',
} as const;
