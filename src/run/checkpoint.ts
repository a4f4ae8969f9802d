// Checkpoints on disk, in formats the ecosystem reads:
//   model.safetensors   HF GPT-2 tensor names, Conv1D layout (what gpt2_torch.py and HF load)
//   config.json         HF GPT-2 config keys
//   tokenizer.json      HF tokenizers format
//   optimizer.safetensors  AdamW moments (flat, our parameter layout) — only for resuming
//   trainer_state.json  step, data cursor, RNG, schedule, history, and sha256 of the files above
//
// A run directory holds checkpoints/step-NNNNNNN/ (the newest K) and a copy of the newest one's
// files at its top level for convenience. A checkpoint directory is written under a temporary
// name, every file fsynced, then renamed into place: a crash leaves either the old set or the
// new set, never half a checkpoint. trainer_state.json is written last and carries the hashes,
// so a damaged file is detected on load and the previous checkpoint is used instead.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fromHfConfig, ModelConfig, toHfConfig, TrainConfig } from '../ml/config';
import { Gpt } from '../ml/gpt';
import { AdamW } from '../ml/adamw';
import { decodeSafetensors, safetensorsChunks } from '../ml/safetensors';
import { BpeTokenizer } from '../ml/bpe';
import type { LoaderCursor } from '../ml/dataset';
import type { RngState } from '../ml/rng';
import { fsyncDir, linkAtomic, writeNewFile } from './atomicFile';
import { CHECKPOINT_FILES, checkpointDirName, checkpointStep, CONFIG_FILE, IMPORTED_FILE, isCheckpointDirName, MODEL_FILE, OPTIMIZER_FILE, runPaths, STATE_FILE, TOKENIZER_FILE } from './layout';

export { checkpointDirName };

export const TRAINER_STATE_FORMAT = 'workspace-lm/trainer-state';
export const TRAINER_STATE_VERSION = 1;

export interface HistoryPoint { step: number; loss: number; lr: number; tokensPerSec: number; elapsedSec: number }
export interface EvalPoint { step: number; valLoss: number }

export interface TrainerState {
  format: typeof TRAINER_STATE_FORMAT;
  version: number;
  step: number;
  totalSteps: number;
  tokensSeen: number;
  elapsedSec: number;
  cursor: LoaderCursor;
  rng: RngState;
  model: ModelConfig;
  train: TrainConfig;
  /** Identifies the dataset the cursor refers to (a resume must use the same tokens). */
  datasetHash: string;
  lastLoss: number | null;
  lastValLoss: number | null;
  history: HistoryPoint[];
  evals: EvalPoint[];
  /** Learning-rate multiplier after diverging steps were skipped (1 = none). */
  lrScale?: number;
  /** sha256 of the binary files, checked on load. */
  files: Record<string, string>;
  savedAt: string;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** model.safetensors as chunks that view the weights (HF names, Conv1D layout, float32). */
export function modelSafetensorsChunks(model: Gpt): Uint8Array[] {
  const f32 = model.params instanceof Float32Array ? model.params : Float32Array.from(model.params);
  return safetensorsChunks(
    model.layout.map((t) => ({ name: t.name, shape: t.shape, data: f32.subarray(t.offset, t.offset + t.size) })),
    { format: 'pt', producer: 'workspace-lm' },
  );
}

export interface SaveInput {
  runDir: string;
  model: Gpt;
  optimizer: AdamW;
  tokenizer: BpeTokenizer;
  state: Omit<TrainerState, 'format' | 'version' | 'files' | 'savedAt'>;
}

/** Writes a checkpoint atomically and returns its directory. Keeps the newest `keep` ones. */
export async function saveCheckpoint(input: SaveInput, keep: number): Promise<string> {
  const { runDir, model, optimizer, tokenizer } = input;
  const ckptRoot = runPaths(runDir).checkpoints;
  await fs.mkdir(ckptRoot, { recursive: true });
  const finalDir = path.join(ckptRoot, checkpointDirName(input.state.step));
  // Never save a broken model: a NaN or Inf weight would poison every later load and resume.
  for (let i = 0; i < model.params.length; i++) {
    if (!Number.isFinite(model.params[i]!)) throw new Error(`refusing to save checkpoint ${finalDir}: weight ${i} is ${model.params[i]}; the previous checkpoint is kept`);
  }
  const tmpDir = path.join(ckptRoot, `.tmp-${checkpointDirName(input.state.step)}-${process.pid}-${Date.now()}`);
  await fs.mkdir(tmpDir);
  try {
    const optChunks = safetensorsChunks(
      [{ name: 'adamw.m', shape: [optimizer.m.length], data: optimizer.m }, { name: 'adamw.v', shape: [optimizer.v.length], data: optimizer.v }],
      { step: String(optimizer.step) },
    );
    const configText = JSON.stringify(toHfConfig(model.cfg), null, 2) + '\n';
    const tokText = JSON.stringify(tokenizer.toHuggingFaceJSON());
    const files: Record<string, string> = {
      [MODEL_FILE]: await writeNewFile(path.join(tmpDir, MODEL_FILE), modelSafetensorsChunks(model)),
      [OPTIMIZER_FILE]: await writeNewFile(path.join(tmpDir, OPTIMIZER_FILE), optChunks),
      [CONFIG_FILE]: await writeNewFile(path.join(tmpDir, CONFIG_FILE), configText),
      [TOKENIZER_FILE]: await writeNewFile(path.join(tmpDir, TOKENIZER_FILE), tokText),
    };
    // Written last: its hashes vouch for the files above.
    const state: TrainerState = { ...input.state, format: TRAINER_STATE_FORMAT, version: TRAINER_STATE_VERSION, files, savedAt: new Date().toISOString() };
    await writeNewFile(path.join(tmpDir, STATE_FILE), JSON.stringify(state, null, 1) + '\n');
    await fsyncDir(tmpDir);
    // Re-saving the same step (e.g. the final save right after a periodic one) replaces it.
    await discardDir(ckptRoot, finalDir);
    await fs.rename(tmpDir, finalDir);
    await fsyncDir(ckptRoot);
  } catch (e) {
    await fs.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`could not save checkpoint to ${finalDir}: ${(e as Error).message}`);
  }
  await publishTopLevel(runDir, finalDir);
  await pruneCheckpoints(ckptRoot, keep);
  return finalDir;
}

/**
 * Mirrors the newest checkpoint's files at the run directory's top level (hard links, each
 * swapped in by rename). trainer_state.json goes last; its hashes tell a reader whether the set
 * is consistent, and the authoritative copy stays in checkpoints/.
 */
async function publishTopLevel(runDir: string, ckptDir: string): Promise<void> {
  for (const f of CHECKPOINT_FILES) await linkAtomic(path.join(ckptDir, f), path.join(runDir, f));
}

/**
 * Deletes a checkpoint directory without ever leaving a half-deleted `step-*` behind: it is first
 * renamed out of the checkpoint namespace (atomic), then removed. A crash in between leaves a
 * `.tmp-` directory that the next save cleans up.
 */
async function discardDir(ckptRoot: string, dir: string): Promise<void> {
  const trash = path.join(ckptRoot, `.tmp-discard-${path.basename(dir)}-${process.pid}-${Date.now()}`);
  try {
    await fs.rename(dir, trash);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await fs.rm(trash, { recursive: true, force: true });
}

async function pruneCheckpoints(ckptRoot: string, keep: number): Promise<void> {
  const entries = (await fs.readdir(ckptRoot)).filter(isCheckpointDirName).sort();
  for (const old of entries.slice(0, Math.max(0, entries.length - Math.max(1, keep)))) {
    await discardDir(ckptRoot, path.join(ckptRoot, old));
  }
  // Leftovers of a crashed save.
  for (const n of await fs.readdir(ckptRoot)) {
    if (n.startsWith('.tmp-') && !n.includes(`-${process.pid}-`)) await fs.rm(path.join(ckptRoot, n), { recursive: true, force: true });
  }
}

export interface LoadedCheckpoint {
  dir: string;
  model: Gpt;
  tokenizer: BpeTokenizer;
  /** Absent for an imported model (weights + config + tokenizer only). */
  state: TrainerState | null;
  optimizer: AdamW | null;
  /** Checkpoints that were skipped as damaged, with the reason (newest first). */
  rejected: { dir: string; reason: string }[];
}

async function readFileOrThrow(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `missing ${file}` : `cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Loads one checkpoint directory, verifying hashes, format and shapes. */
export async function loadCheckpointDir(dir: string, withOptimizer: boolean): Promise<LoadedCheckpoint> {
  const configPath = path.join(dir, CONFIG_FILE);
  let cfg: ModelConfig;
  const configBytes = await readFileOrThrow(configPath);
  try {
    cfg = fromHfConfig(JSON.parse(configBytes.toString('utf8')));
  } catch (e) {
    throw new Error(`${configPath}: ${(e as Error).message}`);
  }
  let state: TrainerState | null = null;
  const statePath = path.join(dir, STATE_FILE);
  const stateBytes = await fs.readFile(statePath).catch(() => null);
  if (stateBytes !== null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(stateBytes.toString('utf8'));
    } catch (e) {
      throw new Error(`${statePath}: not valid JSON (${(e as Error).message}): the checkpoint is damaged`);
    }
    const s = parsed as Partial<TrainerState>;
    if (s.format !== TRAINER_STATE_FORMAT) throw new Error(`${statePath}: not a workspace-lm trainer state (format ${String(s.format)})`);
    if (s.version !== TRAINER_STATE_VERSION) {
      throw new Error(`${statePath}: trainer state format v${String(s.version)}, this build reads v${TRAINER_STATE_VERSION}: retrain, or load only the weights with \`workspace-lm import\``);
    }
    state = s as TrainerState;
  }
  const modelPath = path.join(dir, MODEL_FILE);
  const modelBytes = await readFileOrThrow(modelPath);
  const verify = (name: string, bytes: Uint8Array): void => {
    const want = state?.files?.[name];
    if (want !== undefined && sha256(bytes) !== want) throw new Error(`${path.join(dir, name)}: content hash does not match trainer_state.json: the file is damaged or from another checkpoint`);
  };
  verify(MODEL_FILE, modelBytes);
  verify(CONFIG_FILE, configBytes);
  const tokPath = path.join(dir, TOKENIZER_FILE);
  const tokBytes = await readFileOrThrow(tokPath);
  verify(TOKENIZER_FILE, tokBytes);
  let tokenizer: BpeTokenizer;
  try {
    tokenizer = BpeTokenizer.fromHuggingFaceJSON(JSON.parse(tokBytes.toString('utf8')));
  } catch (e) {
    throw new Error(`${tokPath}: ${(e as Error).message}`);
  }
  if (tokenizer.vocabSize !== cfg.vocabSize) {
    throw new Error(`${tokPath}: tokenizer has ${tokenizer.vocabSize} tokens but config.json says vocab_size ${cfg.vocabSize}`);
  }
  const model = new Gpt(cfg);
  const decoded = decodeSafetensors(modelBytes, modelPath);
  for (const t of model.layout) {
    const src = decoded.tensors.get(t.name);
    if (src === undefined) throw new Error(`${modelPath}: missing tensor ${t.name}`);
    if (src.dtype !== 'F32') throw new Error(`${modelPath}: tensor ${t.name} is ${src.dtype}, expected F32`);
    if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(`${modelPath}: tensor ${t.name} has shape [${src.shape.join(', ')}], config.json implies [${t.shape.join(', ')}]`);
    }
    model.params.set(src.data as Float32Array, t.offset);
  }
  for (let i = 0; i < model.params.length; i++) {
    if (!Number.isFinite(model.params[i]!)) throw new Error(`${modelPath}: contains NaN or Inf weights`);
  }
  let optimizer: AdamW | null = null;
  if (withOptimizer && state !== null) {
    const optPath = path.join(dir, OPTIMIZER_FILE);
    const optBytes = await readFileOrThrow(optPath);
    verify(OPTIMIZER_FILE, optBytes);
    const o = decodeSafetensors(optBytes, optPath);
    const m = o.tensors.get('adamw.m');
    const v = o.tensors.get('adamw.v');
    if (m === undefined || v === undefined || m.data.length !== model.numParams || v.data.length !== model.numParams) {
      throw new Error(`${optPath}: optimizer moments missing or of the wrong size`);
    }
    optimizer = new AdamW(model.numParams);
    optimizer.m.set(m.data as Float32Array);
    optimizer.v.set(v.data as Float32Array);
    optimizer.step = Number(o.metadata['step'] ?? state.step);
  }
  return { dir, model, tokenizer, state, optimizer, rejected: [] };
}

/** Checkpoint directories of a run, newest first. */
export async function listCheckpoints(runDir: string): Promise<string[]> {
  const root = runPaths(runDir).checkpoints;
  const names = await fs.readdir(root).catch(() => [] as string[]);
  return names.filter(isCheckpointDirName).sort().reverse().map((n) => path.join(root, n));
}

/**
 * Loads `dir` as a checkpoint: either a checkpoint directory itself (model.safetensors +
 * config.json + tokenizer.json, with or without trainer state) or a run directory, in which case
 * the newest checkpoint that verifies is used and damaged newer ones are reported in `rejected`.
 */
export async function loadCheckpoint(dir: string, opts: { withOptimizer?: boolean } = {}): Promise<LoadedCheckpoint> {
  const abs = path.resolve(dir);
  const st = await fs.stat(abs).catch(() => null);
  if (st === null || !st.isDirectory()) throw new Error(`checkpoint folder not found: ${abs}`);
  const candidates = await listCheckpoints(abs);
  if (candidates.length === 0) {
    const hasConfig = await fs.stat(path.join(abs, CONFIG_FILE)).then(() => true, () => false);
    if (!hasConfig) throw new Error(`${abs} is not a workspace-lm model: no config.json and no checkpoints/ (train first, or pass the run's --out folder)`);
    return loadCheckpointDir(abs, opts.withOptimizer ?? false);
  }
  const rejected: { dir: string; reason: string }[] = [];
  for (const c of candidates) {
    try {
      const loaded = await loadCheckpointDir(c, opts.withOptimizer ?? false);
      loaded.rejected = rejected;
      return loaded;
    } catch (e) {
      rejected.push({ dir: c, reason: (e as Error).message });
    }
  }
  throw new Error(`no usable checkpoint in ${abs}: ${rejected.map((r) => r.reason).join('; ')}`);
}

// ---- Imported models -----------------------------------------------------------------------

export { IMPORTED_FILE };

/**
 * Installs weights trained elsewhere (PyTorch, `workspace-lm import`) as the newest checkpoint of
 * a run: checkpoints/step-NNNNNNN one past the highest existing step (so the language server's
 * watcher swaps it in), written like saveCheckpoint (temp dir, fsync, rename), then mirrored at
 * the top level. It has no trainer_state.json (loaders treat it as an imported model, with no
 * step or optimizer to resume from); imported.json records its provenance. The top-level
 * trainer_state.json and optimizer.safetensors of the previous model are removed first, so no
 * stale hashes vouch for the new files. Older checkpoints are kept (delete the imported one to
 * go back).
 */
export async function saveImportedCheckpoint(runDir: string, model: Gpt, tokenizer: BpeTokenizer, provenance: Record<string, unknown>): Promise<{ dir: string; step: number }> {
  const ckptRoot = runPaths(runDir).checkpoints;
  await fs.mkdir(ckptRoot, { recursive: true });
  const newest = (await listCheckpoints(runDir))[0];
  const step = newest === undefined ? 1 : checkpointStep(newest) + 1;
  const finalDir = path.join(ckptRoot, checkpointDirName(step));
  const tmpDir = path.join(ckptRoot, `.tmp-${checkpointDirName(step)}-${process.pid}-${Date.now()}`);
  await fs.mkdir(tmpDir);
  try {
    const files: Record<string, string> = {
      [MODEL_FILE]: await writeNewFile(path.join(tmpDir, MODEL_FILE), modelSafetensorsChunks(model)),
      [CONFIG_FILE]: await writeNewFile(path.join(tmpDir, CONFIG_FILE), JSON.stringify(toHfConfig(model.cfg), null, 2) + '\n'),
      [TOKENIZER_FILE]: await writeNewFile(path.join(tmpDir, TOKENIZER_FILE), JSON.stringify(tokenizer.toHuggingFaceJSON())),
    };
    const record = { format: 'workspace-lm/imported', version: 1, ...provenance, files, importedAt: new Date().toISOString() };
    await writeNewFile(path.join(tmpDir, IMPORTED_FILE), JSON.stringify(record, null, 1) + '\n');
    await fsyncDir(tmpDir);
    await fs.rename(tmpDir, finalDir);
    await fsyncDir(ckptRoot);
  } catch (e) {
    await fs.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`could not write ${finalDir}: ${(e as Error).message}`);
  }
  for (const f of [STATE_FILE, OPTIMIZER_FILE]) await fs.rm(path.join(runDir, f), { force: true });
  for (const f of [MODEL_FILE, CONFIG_FILE, TOKENIZER_FILE]) await linkAtomic(path.join(finalDir, f), path.join(runDir, f));
  return { dir: finalDir, step };
}
