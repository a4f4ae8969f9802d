// What a training run is asked to do (the CLI's flags, the language server's request), and the
// default thread count.

import * as os from 'node:os';
import type { PresetName, TrainConfig } from '../ml/config';
import { PER_THREAD_PRIORITY } from '../runtime/priority';
import type { TrainControl } from './trainControl';
import type { createEngine } from './trainEngine';

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
  /**
   * Train on a folder that is a filesystem root, the home folder or an ancestor of it; refused
   * otherwise, with a message naming the CLI's --allow-home.
   */
  allowHomeOrRoot?: boolean;
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

