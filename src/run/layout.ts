// The run directory: the one module that knows its layout and its files' schemas. Everything
// else asks here for a path (trainer, dataset builder, checkpoints, the n-gram and copy models,
// eval, export/import, the language server's watcher).
//
//   <run>/                      (the CLI's default: runsHome()/<name>-<hash of the folder's path>;
//                                the extension uses its workspace storage; --out chooses)
//     model.safetensors config.json tokenizer.json trainer_state.json optimizer.safetensors
//                               the newest checkpoint, mirrored (hard links) from checkpoints/
//     checkpoints/step-NNNNNNN/ the newest few checkpoints, each complete (+ imported.json when imported)
//     data/train.bin val.bin    uint16 token ids, files joined by <|endoftext|> (nanoGPT layout)
//     data/meta.json            DatasetMeta
//     data/tokenizer.json       the tokenizer train.bin and val.bin are in
//     data/files.bin files.json the per-file token cache (incremental re-indexing)
//     eval.json                 the latest `workspace-lm eval` (run/evalReport.ts)

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeAtomic } from './atomicFile';
import { parseJsonFile, readRegularFile, READ_LIMITS } from './safeRead';

/**
 * The run folder's name inside a workspace folder in earlier versions (the CLI's old default
 * --out). Never indexed, never served by default (a cloned repository could ship one).
 */
export const RUN_DIR_NAME = '.workspace-lm';

/** The files of one checkpoint. */
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const CONFIG_FILE = 'config.json';
export const TOKENIZER_FILE = 'tokenizer.json';
export const STATE_FILE = 'trainer_state.json';
/** Written next to an imported model instead of trainer_state.json: where it came from. */
export const IMPORTED_FILE = 'imported.json';
/** Every file a trained checkpoint holds (an imported one has no optimizer or state). */
export const CHECKPOINT_FILES = [MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE, TOKENIZER_FILE, STATE_FILE] as const;

export const CHECKPOINTS_DIR = 'checkpoints';
/** checkpoints/ of the run before the last --retrain (kept until the new run's first save). */
export const PREVIOUS_CHECKPOINTS_DIR = 'checkpoints.previous';
export const DATA_DIR = 'data';
export const EVAL_FILE = 'eval.json';
/** The per-file token cache inside data/: the tokens, then the index that points into them. */
export const FILE_TOKENS_BIN = 'files.bin';
export const FILE_TOKENS_INDEX = 'files.json';

/** A checkpoint directory's name: step-NNNNNNN (sorts by step). */
export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(7, '0')}`;
}

export function isCheckpointDirName(name: string): boolean {
  return /^step-\d+$/.test(name);
}

/** The step in a checkpoint directory's name. */
export function checkpointStep(dir: string): number {
  return Number(path.basename(dir).slice('step-'.length));
}

/**
 * Where the CLI and `serve` keep runs: the user's cache, outside every repository — so a
 * repository cannot ship a run that would be served as ours. $XDG_CACHE_HOME/workspace-lm (or
 * ~/.cache/workspace-lm) on Linux, ~/Library/Caches/workspace-lm on macOS, %LOCALAPPDATA%\workspace-lm
 * on Windows.
 */
export function runsHome(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = os.homedir()): string {
  if (platform === 'win32') return path.join(env['LOCALAPPDATA'] ?? path.join(home, 'AppData', 'Local'), 'workspace-lm');
  if (platform === 'darwin') return path.join(home, 'Library', 'Caches', 'workspace-lm');
  const xdg = env['XDG_CACHE_HOME'];
  return path.join(xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(home, '.cache'), 'workspace-lm');
}

/** The default run directory of a workspace folder: runsHome()/<folder name>-<12 hex digits of the sha256 of its absolute path>. */
export function defaultRunDir(folder: string, home: string = runsHome()): string {
  const abs = path.resolve(folder);
  const name = path.basename(abs).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 48) || 'root';
  return path.join(home, `${name}-${createHash('sha256').update(abs).digest('hex').slice(0, 12)}`);
}

/** Where earlier versions put a folder's run: <folder>/.workspace-lm. */
export function legacyRunDir(folder: string): string {
  return path.join(path.resolve(folder), RUN_DIR_NAME);
}

/**
 * The message for a run found at the old in-repository location: it is not used (a repository
 * could ship one), and how to keep it if it was made on this machine.
 */
export async function legacyRunNotice(folder: string): Promise<string | null> {
  const old = legacyRunDir(folder);
  if (!(await isRunDir(old))) return null;
  const now = defaultRunDir(folder);
  return `${old} holds a run from an earlier version, which kept runs inside the folder; runs now live in ${now} (outside the repository, so a cloned repository cannot choose your model). It is not used: if you made it on this machine, move it: mv ${JSON.stringify(old)} ${JSON.stringify(now)}`;
}

/** Every path of a run directory. */
export function runPaths(runDir: string) {
  const data = path.join(runDir, DATA_DIR);
  return {
    dir: runDir,
    checkpoints: path.join(runDir, CHECKPOINTS_DIR),
    previousCheckpoints: path.join(runDir, PREVIOUS_CHECKPOINTS_DIR),
    checkpoint: (step: number): string => path.join(runDir, CHECKPOINTS_DIR, checkpointDirName(step)),
    state: path.join(runDir, STATE_FILE),
    evalReport: path.join(runDir, EVAL_FILE),
    data,
    trainBin: path.join(data, 'train.bin'),
    valBin: path.join(data, 'val.bin'),
    meta: path.join(data, 'meta.json'),
    dataTokenizer: path.join(data, TOKENIZER_FILE),
    /** The per-file token cache: tokens, then the index that points into them. */
    filesBin: path.join(data, FILE_TOKENS_BIN),
    filesJson: path.join(data, FILE_TOKENS_INDEX),
  };
}

export type RunPaths = ReturnType<typeof runPaths>;

/**
 * Creates a run directory (and its parents) with a .gitignore of `*`: a run inside the user's
 * repository (by --out) stays out of their git status.
 */
export async function initRunDir(runDir: string): Promise<void> {
  await fs.mkdir(runDir, { recursive: true });
  const ignore = path.join(runDir, '.gitignore');
  if (!(await fs.stat(ignore).then(() => true, () => false))) await writeAtomic(ignore, '*\n');
}

/**
 * Deletes a run folder: renamed aside first (atomic), so a crash mid-delete never leaves a
 * half-deleted run that a watcher or a resume would read, then removed.
 */
export async function deleteRunDir(runDir: string): Promise<void> {
  const aside = `${path.resolve(runDir)}.deleting-${process.pid}-${Date.now()}`;
  try {
    await fs.rename(runDir, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await fs.rm(aside, { recursive: true, force: true });
}

/** Whether `dir` looks like a run directory (it has checkpoints or a dataset). */
export async function isRunDir(dir: string): Promise<boolean> {
  const p = runPaths(dir);
  const has = (f: string): Promise<boolean> => fs.stat(f).then(() => true, () => false);
  return (await has(p.checkpoints)) || (await has(p.meta));
}

/**
 * What a `--checkpoint` argument names: a run or checkpoint directory itself, or a workspace
 * folder, meaning its run in the runs folder (never the in-folder run of an earlier version: that
 * one must be named explicitly).
 */
export async function resolveCheckpointArg(arg: string): Promise<string> {
  const abs = path.resolve(arg);
  const has = (f: string): Promise<boolean> => fs.stat(f).then(() => true, () => false);
  if ((await isRunDir(abs)) || (await has(path.join(abs, CONFIG_FILE)))) return abs;
  const run = defaultRunDir(abs);
  return (await isRunDir(run)) ? run : abs;
}

/** The run directory of a checkpoint directory: it, or the run above a checkpoints/step-N dir (the first candidate that has data/meta.json). */
export async function findRunDir(...candidates: string[]): Promise<string | null> {
  for (const arg of candidates) {
    for (const d of [path.resolve(arg), path.resolve(arg, '..', '..')]) {
      if (await fs.stat(runPaths(d).meta).then(() => true, () => false)) return d;
    }
  }
  return null;
}

// ---- data/meta.json -------------------------------------------------------------------------

export const DATASET_FORMAT = 'workspace-lm/dataset';

/** data/meta.json: what train.bin and val.bin hold. */
export interface DatasetMeta {
  format: typeof DATASET_FORMAT;
  version: 1;
  vocab_size: number;
  eot_id: number;
  train_tokens: number;
  val_tokens: number;
  train_files: number;
  /** train.bin's files in order (so the copy model can tell which training text is the open file's own). */
  train_paths?: string[];
  /** The held-out files (paths relative to their folder, as the corpus lists them). */
  val_files: string[];
  dataset_hash: string;
  corpus_bytes: number;
  /** The folder trained on (one of `folders`), for `eval` to find the held-out files. */
  root?: string;
  folders?: string[];
}

/** data/meta.json of a run, or null when absent or unreadable. Fields that fail their type are dropped. */
export async function readDatasetMeta(runDir: string): Promise<Partial<DatasetMeta> | null> {
  let raw: unknown;
  try {
    const file = runPaths(runDir).meta;
    raw = parseJsonFile(await readRegularFile(file, READ_LIMITS.datasetMeta, { allowSymlinkWithin: runDir }), file);
  } catch {
    return null;
  }
  if (raw === null || typeof raw !== 'object') return null;
  const m = raw as Record<string, unknown>;
  const strings = (x: unknown): string[] | undefined => (Array.isArray(x) && x.every((p) => typeof p === 'string') ? (x as string[]) : undefined);
  const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
  const out: Partial<DatasetMeta> = {};
  const set = <K extends keyof DatasetMeta>(k: K, v: DatasetMeta[K] | undefined): void => { if (v !== undefined) out[k] = v; };
  set('vocab_size', num(m['vocab_size']));
  set('eot_id', num(m['eot_id']));
  set('train_tokens', num(m['train_tokens']));
  set('val_tokens', num(m['val_tokens']));
  set('train_files', num(m['train_files']));
  set('corpus_bytes', num(m['corpus_bytes']));
  set('train_paths', strings(m['train_paths']));
  set('val_files', strings(m['val_files']));
  set('folders', strings(m['folders']));
  if (typeof m['root'] === 'string') out.root = m['root'];
  if (typeof m['dataset_hash'] === 'string') out.dataset_hash = m['dataset_hash'];
  return out;
}
