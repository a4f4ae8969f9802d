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
import { parseSafetensorsHeader, safetensorsChunks, SafetensorsHeader, safetensorsHeaderLength, unexpectedTensors } from '../ml/safetensors';
import { parameterLayout } from '../ml/paramLayout';
import { BpeTokenizer } from '../ml/bpe';
import type { LoaderCursor } from '../ml/dataset';
import type { RngState } from '../ml/rng';
import { fsyncDir, linkAtomic, writeNewFile } from './atomicFile';
import { hashRegularFile, openRegularFile, parseJsonFile, readRegularFile, READ_LIMITS, SafeReadOptions } from './safeRead';
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
  // After the links (a new link changes the files' ctime, part of the identity).
  await rememberVerified(finalDir, TRAINED_FILES, STATE_FILE);
  await pruneCheckpoints(ckptRoot, keep, finalDir);
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

/**
 * Keeps the newest `keep` checkpoints that verify (see verifyCheckpointDir). One that does not is
 * moved aside to checkpoints/.damaged-step-NNNNNNN-<time> — never deleted: the user may want
 * it — so a damaged checkpoint neither holds a slot nor pushes a good one out. `justSaved` was
 * verified by being written (its hashes were computed from the bytes written).
 */
async function pruneCheckpoints(ckptRoot: string, keep: number, justSaved: string): Promise<void> {
  const entries = (await fs.readdir(ckptRoot)).filter(isCheckpointDirName).sort().reverse();
  let good = 0;
  for (const name of entries) {
    const dir = path.join(ckptRoot, name);
    const damaged = dir === justSaved ? null : await verifyCheckpointDir(dir);
    if (damaged !== null) await moveAside(ckptRoot, dir);
    else if (good < Math.max(1, keep)) good++;
    else await discardDir(ckptRoot, dir);
  }
  // Leftovers of a crashed save.
  for (const n of await fs.readdir(ckptRoot)) {
    if (n.startsWith('.tmp-') && !n.includes(`-${process.pid}-`)) await fs.rm(path.join(ckptRoot, n), { recursive: true, force: true });
  }
}

/** The prefix of a damaged checkpoint moved aside (dot-prefixed: no listing takes it for a checkpoint). */
export const DAMAGED_PREFIX = '.damaged-';

/** Renames a damaged checkpoint out of the checkpoint namespace (atomic), keeping its files. */
async function moveAside(ckptRoot: string, dir: string): Promise<string> {
  const time = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let target = path.join(ckptRoot, `${DAMAGED_PREFIX}${path.basename(dir)}-${time}`);
  for (let i = 2; await fs.lstat(target).then(() => true, () => false); i++) target = path.join(ckptRoot, `${DAMAGED_PREFIX}${path.basename(dir)}-${time}-${i}`);
  await fs.rename(dir, target);
  await fsyncDir(ckptRoot);
  return target;
}

/** The files each kind of checkpoint must list with their hashes. */
const TRAINED_FILES = [MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE, TOKENIZER_FILE] as const;
const IMPORTED_FILES = [MODEL_FILE, CONFIG_FILE, TOKENIZER_FILE] as const;

/** Checkpoints verified by this process, by the identity (inode, size, mtime, ctime) of their files: each is hashed once, not at every save (any write to a file changes its ctime). */
const verified = new Map<string, string>();

async function identityOf(dir: string, names: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const n of names) {
    const st = await fs.lstat(path.join(dir, n)).catch(() => null);
    parts.push(st === null ? '-' : `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`);
  }
  return parts.join('|');
}

/**
 * Why a checkpoint directory is damaged, or null when it verifies: its record
 * (trainer_state.json, or imported.json for an imported model) parses and lists a hash for each
 * of its files, and every file hashes to it. Reads the files in slices (never a whole file).
 */
export async function verifyCheckpointDir(dir: string): Promise<string | null> {
  const opts: SafeReadOptions = { allowSymlinkWithin: dir };
  let record: { files?: unknown } | null = null;
  let names: readonly string[] = TRAINED_FILES;
  let recordName: string = STATE_FILE;
  for (const [file, files] of [[STATE_FILE, TRAINED_FILES], [IMPORTED_FILE, IMPORTED_FILES]] as const) {
    try {
      record = parseJsonFile(await readRegularFile(path.join(dir, file), READ_LIMITS.state, opts), path.join(dir, file)) as { files?: unknown };
      names = files;
      recordName = file;
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return (e as Error).message;
    }
  }
  if (record === null) return `${dir}: neither ${STATE_FILE} nor ${IMPORTED_FILE}`;
  const key = await identityOf(dir, [recordName, ...names]);
  if (verified.get(dir) === key) return null;
  const files = typeof record === 'object' && record !== null ? record.files : undefined;
  if (typeof files !== 'object' || files === null) return `${path.join(dir, recordName)}: no file hashes`;
  for (const n of names) {
    const want = (files as Record<string, unknown>)[n];
    if (typeof want !== 'string') return `${path.join(dir, recordName)}: no hash for ${n}`;
    let got: string;
    try {
      got = await hashRegularFile(path.join(dir, n), readLimit(n), opts);
    } catch (e) {
      return (e as Error).message;
    }
    if (got !== want) return `${path.join(dir, n)}: content hash does not match ${recordName}`;
  }
  verified.set(dir, key);
  return null;
}

/** Records a checkpoint this process just wrote (and so knows to be good) as verified. */
async function rememberVerified(dir: string, names: readonly string[], recordName: string): Promise<void> {
  verified.set(dir, await identityOf(dir, [recordName, ...names]));
}

export interface LoadedCheckpoint {
  dir: string;
  model: Gpt;
  tokenizer: BpeTokenizer;
  /** Absent for an imported model (weights + config + tokenizer only). */
  state: TrainerState | null;
  optimizer: AdamW | null;
  /** model.safetensors' __metadata__ (e.g. its producer). */
  metadata: Record<string, string>;
  /** Checkpoints that were skipped as damaged, with the reason (newest first). */
  rejected: { dir: string; reason: string }[];
}

/** The read cap of each checkpoint file (safeRead.ts: nothing else is read, and nothing larger). */
function readLimit(name: string): number {
  switch (name) {
    case MODEL_FILE: return READ_LIMITS.model;
    case OPTIMIZER_FILE: return READ_LIMITS.optimizer;
    case CONFIG_FILE: return READ_LIMITS.config;
    case TOKENIZER_FILE: return READ_LIMITS.tokenizer;
    default: return READ_LIMITS.state;
  }
}

/** A tensor a checkpoint file must hold: float32, this shape. */
interface ExpectedTensor { name: string; shape: readonly number[] }

/**
 * Reads a safetensors file that must hold exactly `expected` (float32, these shapes, nothing
 * else). Its header is read and checked first (at most MAX_HEADER_BYTES), against the expected
 * tensors and then against the file's size — the size the config implies — so that nothing the
 * size of the weights is allocated before the file is known to be that size; only then is the
 * file read whole (its hash is checked by the caller).
 */
async function readExpectedSafetensors(file: string, expected: readonly ExpectedTensor[], source: string, opts: SafeReadOptions): Promise<{ bytes: Buffer; header: SafetensorsHeader }> {
  const f = await openRegularFile(file, readLimit(path.basename(file)), opts);
  try {
    const headerLength = safetensorsHeaderLength(await f.read(0, Math.min(8, f.size)), f.size, file);
    const header = parseSafetensorsHeader(await f.read(0, 8 + headerLength), f.size, file);
    for (const t of expected) {
      const src = header.tensors.get(t.name);
      if (src === undefined) throw new Error(`${file}: missing tensor ${t.name}`);
      if (src.dtype !== 'F32') throw new Error(`${file}: tensor ${t.name} is ${src.dtype}, expected F32`);
      if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i])) {
        throw new Error(`${file}: tensor ${t.name} has shape [${src.shape.join(', ')}], ${source} implies [${t.shape.join(', ')}]`);
      }
    }
    const names = new Set(expected.map((t) => t.name));
    const extra = [...header.tensors.keys()].filter((n) => !names.has(n));
    if (extra.length > 0) throw unexpectedTensors(file, extra);
    // Implied by the checks above (the ranges tile the data section), and said outright: the file
    // is exactly the header and the float32 values the config implies.
    const floats = expected.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    if (f.size !== header.dataStart + 4 * floats) {
      throw new Error(`${file}: ${f.size} bytes, but ${source} implies ${floats} float32 values (${header.dataStart + 4 * floats} bytes with the header)`);
    }
    return { bytes: await f.read(0, f.size), header };
  } finally {
    await f.close();
  }
}

/** Copies the float32 tensors of a file read by readExpectedSafetensors into `target` at the given float offsets. */
function copyTensors(bytes: Buffer, header: SafetensorsHeader, placements: readonly { name: string; offset: number }[], target: Float32Array): void {
  const dst = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  for (const p of placements) {
    const t = header.tensors.get(p.name)!;
    dst.set(bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end), p.offset * 4);
  }
}

/** trainer_state.json, checked as far as the loader relies on it (the rest is the trainer's own). */
function checkTrainerState(parsed: unknown, statePath: string): TrainerState {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${statePath}: not a JSON object: the checkpoint is damaged`);
  const s = parsed as Partial<TrainerState>;
  const shown = (v: unknown): string => String(JSON.stringify(v) ?? v).slice(0, 40).replace(/[\u0000-\u001f]/g, '?');
  if (s.format !== TRAINER_STATE_FORMAT) throw new Error(`${statePath}: not a workspace-lm trainer state (format ${shown(s.format)})`);
  if (s.version !== TRAINER_STATE_VERSION) {
    throw new Error(`${statePath}: trainer state format v${shown(s.version)}, this build reads v${TRAINER_STATE_VERSION}: retrain, or load only the weights with \`workspace-lm import\``);
  }
  if (!Number.isSafeInteger(s.step) || s.step! < 0) throw new Error(`${statePath}: step ${shown(s.step)} is not a step number: the checkpoint is damaged`);
  const files = s.files as unknown;
  if (files !== undefined && (files === null || typeof files !== 'object' || Array.isArray(files) || !Object.values(files).every((h) => typeof h === 'string'))) {
    throw new Error(`${statePath}: "files" must map file names to hashes: the checkpoint is damaged`);
  }
  return s as TrainerState;
}

export interface LoadDirOptions {
  /**
   * The folder the checkpoint's files must be in (default: `dir` itself): a symbolic link (the
   * folder itself, or a file in it) that resolves outside is refused.
   */
  within?: string;
}

/** Loads one checkpoint directory, verifying hashes, format and shapes. Every error is one line naming the file. */
export async function loadCheckpointDir(dir: string, withOptimizer: boolean, opts: LoadDirOptions = {}): Promise<LoadedCheckpoint> {
  const within = opts.within ?? dir;
  if (opts.within !== undefined) {
    const [real, root] = await Promise.all([fs.realpath(dir), fs.realpath(opts.within)]).catch(() => [null, null]);
    const rel = real === null || root === null ? null : path.relative(root, real);
    if (rel === null || rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${dir}: resolves to outside ${opts.within} (a symbolic link?): refusing to load it`);
  }
  const readOpts: SafeReadOptions = { allowSymlinkWithin: within };
  const read = (name: string): Promise<Buffer> => readRegularFile(path.join(dir, name), readLimit(name), readOpts);

  const configPath = path.join(dir, CONFIG_FILE);
  let cfg: ModelConfig;
  const configBytes = await read(CONFIG_FILE);
  try {
    cfg = fromHfConfig(parseJsonFile(configBytes, CONFIG_FILE));
  } catch (e) {
    throw new Error(`${configPath}: ${(e as Error).message.replace(/^config\.json: /, '')}`);
  }

  let state: TrainerState | null = null;
  const statePath = path.join(dir, STATE_FILE);
  let stateBytes: Buffer | null = null;
  try {
    stateBytes = await read(STATE_FILE);
  } catch (e) {
    // No trainer state: an imported model. Anything else (a FIFO, a link outside) is an error.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (stateBytes !== null) {
    let parsed: unknown;
    try {
      parsed = parseJsonFile(stateBytes, statePath);
    } catch (e) {
      throw new Error(`${(e as Error).message}: the checkpoint is damaged`);
    }
    state = checkTrainerState(parsed, statePath);
  }
  const verify = (name: string, bytes: Uint8Array): void => {
    const want = state?.files?.[name];
    if (want !== undefined && sha256(bytes) !== want) throw new Error(`${path.join(dir, name)}: content hash does not match trainer_state.json: the file is damaged or from another checkpoint`);
  };
  verify(CONFIG_FILE, configBytes);

  // The tokenizer before the weights: a vocabulary that contradicts config.json is the clearer error.
  const tokPath = path.join(dir, TOKENIZER_FILE);
  const tokBytes = await read(TOKENIZER_FILE);
  verify(TOKENIZER_FILE, tokBytes);
  let tokenizer: BpeTokenizer;
  try {
    tokenizer = BpeTokenizer.fromHuggingFaceJSON(parseJsonFile(tokBytes, TOKENIZER_FILE));
  } catch (e) {
    throw new Error(`${tokPath}: ${(e as Error).message.replace(/^tokenizer\.json: /, '')}`);
  }
  if (tokenizer.vocabSize !== cfg.vocabSize) {
    throw new Error(`${tokPath}: tokenizer has ${tokenizer.vocabSize} tokens but config.json says vocab_size ${cfg.vocabSize}`);
  }

  // config.json is bounded (MODEL_LIMITS), so its layout is small; the weights are read only once
  // the file's header and size agree with it (readExpectedSafetensors).
  const layout = parameterLayout(cfg);
  const modelPath = path.join(dir, MODEL_FILE);
  const { bytes: modelBytes, header } = await readExpectedSafetensors(modelPath, layout, 'config.json', readOpts);
  verify(MODEL_FILE, modelBytes);
  const model = new Gpt(cfg);
  if (!(model.params instanceof Float32Array)) throw new Error('internal: a loaded model must be float32');
  copyTensors(modelBytes, header, layout, model.params);
  for (const t of layout) {
    let bad = 0;
    for (let i = t.offset; i < t.offset + t.size; i++) if (!Number.isFinite(model.params[i]!)) bad++;
    if (bad > 0) throw new Error(`${modelPath}: tensor ${t.name} has ${bad} NaN/Inf value(s): the training diverged (use an earlier checkpoint)`);
  }

  let optimizer: AdamW | null = null;
  if (withOptimizer && state !== null) {
    const optPath = path.join(dir, OPTIMIZER_FILE);
    const moments = [{ name: 'adamw.m', shape: [model.numParams] }, { name: 'adamw.v', shape: [model.numParams] }];
    const o = await readExpectedSafetensors(optPath, moments, 'config.json (one moment per parameter)', readOpts);
    verify(OPTIMIZER_FILE, o.bytes);
    optimizer = new AdamW(model.numParams);
    copyTensors(o.bytes, o.header, [{ name: 'adamw.m', offset: 0 }], optimizer.m);
    copyTensors(o.bytes, o.header, [{ name: 'adamw.v', offset: 0 }], optimizer.v);
    const step = o.header.metadata['step'];
    optimizer.step = step !== undefined && /^\d{1,15}$/.test(step) ? Number(step) : state.step;
  }
  return { dir, model, tokenizer, state, optimizer, metadata: header.metadata, rejected: [] };
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
      const loaded = await loadCheckpointDir(c, opts.withOptimizer ?? false, { within: abs });
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
  await rememberVerified(finalDir, IMPORTED_FILES, IMPORTED_FILE);
  return { dir: finalDir, step };
}
