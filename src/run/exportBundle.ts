// Outgrowing one machine: a run's dataset, tokenizer, config and (optionally) weights go out as a
// self-contained PyTorch training bundle (scripts/train_torch.py + scripts/gpt2_torch.py, DDP
// under torchrun or self-launched), and what PyTorch trained comes back in as the served model.
//
//   exportBundle(runDir, toDir)  writes the bundle (see BUNDLE_FILES and the README it writes)
//   importModel(srcDir, runDir)  validates a model folder (model.safetensors + config.json +
//                                tokenizer.json, or a folder with checkpoints/) and installs it
//                                as the newest checkpoint of the run
//
// Plain async functions over files: the CLI calls them, and the language server can too.

import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_TRAIN, toHfConfig, TrainConfig } from '../ml/config';
import { parameterCount } from '../ml/paramLayout';
import { BpeTokenizer } from '../ml/bpe';
import { listCheckpoints, LoadedCheckpoint, loadCheckpoint, loadCheckpointDir, modelSafetensorsChunks, saveImportedCheckpoint } from './checkpoint';
import { DatasetMeta, defaultRunDir, initRunDir, isRunDir, legacyRunDir, runPaths } from './layout';
import { copyAtomic, writeAtomic } from './atomicFile';
import { assertRegularFile, parseJsonFile, readRegularFile, READ_LIMITS } from './safeRead';

/** The scripts every bundle carries (from the repository's / extension's scripts/ folder). */
export const BUNDLE_SCRIPTS = ['train_torch.py', 'gpt2_torch.py'] as const;

/** Every file of a bundle; model.safetensors only when weights are exported. */
export const BUNDLE_FILES = [
  'train.bin', 'val.bin', 'meta.json', 'tokenizer.json', 'config.json', 'train_config.json', 'model.safetensors',
  ...BUNDLE_SCRIPTS, 'README.md',
] as const;

export interface ExportOptions {
  /** Include the current model.safetensors to continue from (default true). */
  weights?: boolean;
  /** Where train_torch.py and gpt2_torch.py are (default: found next to the running code). */
  scriptsDir?: string;
}

export interface ExportResult {
  dir: string;
  runDir: string;
  /** Files written, relative to dir. */
  files: string[];
  weights: boolean;
  /** Step of the exported checkpoint (null for an imported model). */
  step: number | null;
  /** The exported model's validation loss, when its run measured it at that step. */
  valLoss: number | null;
  trainTokens: number;
  valTokens: number;
  params: number;
}

export interface ImportResult {
  runDir: string;
  /** The new checkpoint directory (checkpoints/step-NNNNNNN). */
  checkpointDir: string;
  step: number;
  /** The directory the weights were read from. */
  source: string;
  params: number;
  vocabSize: number;
  contextLength: number;
  /** Whether the imported tokenizer is the one the run's data/ was encoded with (null: no data/). */
  tokenizerMatchesData: boolean | null;
  /** What train_torch.py recorded (torch_state.json), if present. */
  trained: { step: number | null; valLoss: number | null; trainLoss: number | null } | null;
}

/** A folder given by the user: a run directory itself, or a workspace folder (its run: defaultRunDir, or the in-folder run of an earlier version). */
export async function resolveRunDir(folderOrRun: string): Promise<string> {
  const abs = path.resolve(folderOrRun);
  const st = await fs.stat(abs).catch(() => null);
  if (st === null || !st.isDirectory()) throw new Error(`folder not found: ${abs}`);
  if (await isRunDir(abs)) return abs;
  // The folder's run (or, from an earlier version, the one inside it: exporting only reads it).
  for (const nested of [defaultRunDir(abs), legacyRunDir(abs)]) if (await isRunDir(nested)) return nested;
  throw new Error(`${abs} is neither a workspace-lm run (no checkpoints/ or data/) nor a folder with one (${defaultRunDir(abs)}): train first (workspace-lm train ${folderOrRun})`);
}

/** train_torch.py / gpt2_torch.py: next to dist/ (CLI, server, packaged extension) or in the repository. */
export function findScriptsDir(): string {
  const candidates = [path.join(__dirname, '..', 'scripts'), path.join(__dirname, '..', '..', 'scripts'), __dirname];
  for (const d of candidates) if (BUNDLE_SCRIPTS.every((s) => existsSync(path.join(d, s)))) return path.resolve(d);
  throw new Error(`cannot find ${BUNDLE_SCRIPTS.join(' and ')} (looked in ${candidates.map((c) => path.resolve(c)).join(', ')}): this installation is incomplete`);
}

/** A JSON file of a run or model folder: a regular file of at most `maxBytes` (safeRead.ts), parsed; errors name the file (code 'ENOENT' when missing). */
async function readJson(file: string, maxBytes: number): Promise<unknown> {
  return parseJsonFile(await readRegularFile(file, maxBytes, { allowSymlinkWithin: path.dirname(file) }), file);
}

function tokenizerKey(t: BpeTokenizer): string {
  return createHash('sha256').update(JSON.stringify(t.toHuggingFaceJSON())).digest('hex');
}


/**
 * Writes the PyTorch training bundle of a run into toDir (created if needed; it must be empty or
 * an earlier bundle). The dataset must have been encoded with the model's tokenizer.
 */
export async function exportBundle(runDir: string, toDir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const run = path.resolve(runDir);
  const dir = path.resolve(toDir);
  const weights = opts.weights !== false;
  const scriptsDir = opts.scriptsDir ?? findScriptsDir();
  const data = runPaths(run);
  const dataDir = data.data;
  for (const f of [data.trainBin, data.valBin, data.meta, data.dataTokenizer]) {
    if (!existsSync(f)) throw new Error(`${run} has no dataset to export (missing ${f}): train first (workspace-lm train <folder>)`);
    // Copied below: regular files only (copying a FIFO blocks, a device never ends).
    await assertRegularFile(f, f === data.trainBin || f === data.valBin ? READ_LIMITS.datasetBin : READ_LIMITS.datasetMeta, { allowSymlinkWithin: run });
  }
  const ck = await loadCheckpoint(run);
  const cfg = ck.model.cfg;
  const meta = (await readJson(data.meta, READ_LIMITS.datasetMeta)) as Partial<DatasetMeta>;
  const dataTok = BpeTokenizer.fromHuggingFaceJSON(await readJson(data.dataTokenizer, READ_LIMITS.tokenizer));
  if (meta.vocab_size !== cfg.vocabSize || tokenizerKey(dataTok) !== tokenizerKey(ck.tokenizer)) {
    throw new Error(`${dataDir} was encoded with another tokenizer than the model in ${ck.dir} (vocab ${String(meta.vocab_size)} vs ${cfg.vocabSize}): train the run again before exporting it`);
  }
  const trainBytes = (await fs.stat(data.trainBin)).size;
  const valBytes = (await fs.stat(data.valBin)).size;
  const trainTokens = Math.floor(trainBytes / 2);
  const valTokens = Math.floor(valBytes / 2);
  if (trainBytes % 2 !== 0 || (meta.train_tokens !== undefined && meta.train_tokens !== trainTokens)) {
    throw new Error(`${data.trainBin}: ${trainBytes} bytes, but meta.json says ${String(meta.train_tokens)} uint16 tokens: the dataset is damaged (train again)`);
  }

  // The bundle's folder: new, empty, or an earlier bundle (never someone's other files).
  await fs.mkdir(dir, { recursive: true });
  const known = new Set<string>([...BUNDLE_FILES, 'out']);
  const foreign = (await fs.readdir(dir)).filter((n) => !known.has(n) && !n.includes('.tmp-'));
  if (foreign.length > 0 && !existsSync(path.join(dir, 'train_torch.py'))) {
    throw new Error(`${dir} is not empty (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}): export into a new folder`);
  }

  const state = ck.state;
  const train: TrainConfig = state?.train ?? DEFAULT_TRAIN;
  const lastEval = state?.evals[state.evals.length - 1];
  const valLoss = weights && state !== null && lastEval !== undefined && lastEval.step === state.step ? lastEval.valLoss : null;
  // The trainer's window length: the context, or less for a tiny dataset.
  const blockSize = Math.min(cfg.contextLength, Math.max(8, trainTokens - 1));
  const trainConfig = {
    batch_size: train.batchSize, learning_rate: train.learningRate, min_lr_ratio: train.minLrRatio,
    warmup_fraction: train.warmupFraction, warmup_max_steps: train.warmupMaxSteps, beta1: train.beta1, beta2: train.beta2,
    eps: train.eps, weight_decay: train.weightDecay, grad_clip: train.gradClip, epochs: train.epochs,
    eval_every: train.evalEvery, eval_batches: train.evalBatches, checkpoint_every: train.checkpointEvery,
    keep_checkpoints: train.keepCheckpoints, seed: train.seed, block_size: blockSize,
    // What the exported weights scored on the validation windows train_torch.py also uses.
    step: weights ? (state?.step ?? null) : null, train_loss: weights ? (state?.lastLoss ?? null) : null, val_loss: valLoss,
  };

  const files: string[] = [];
  const put = async (name: string, data: string | Uint8Array | Uint8Array[]): Promise<void> => {
    await writeAtomic(path.join(dir, name), data);
    files.push(name);
  };
  const copy = async (from: string, name: string): Promise<void> => {
    await copyAtomic(from, path.join(dir, name));
    files.push(name);
  };
  await copy(data.trainBin, 'train.bin');
  await copy(data.valBin, 'val.bin');
  await copy(data.meta, 'meta.json');
  await put('tokenizer.json', JSON.stringify(ck.tokenizer.toHuggingFaceJSON()));
  await put('config.json', JSON.stringify(toHfConfig(cfg), null, 2) + '\n');
  await put('train_config.json', JSON.stringify(trainConfig, null, 1) + '\n');
  if (weights) await put('model.safetensors', modelSafetensorsChunks(ck.model));
  else await fs.rm(path.join(dir, 'model.safetensors'), { force: true }); // an earlier bundle's
  for (const s of BUNDLE_SCRIPTS) await copy(path.join(scriptsDir, s), s);
  const params = parameterCount(cfg);
  await put('README.md', bundleReadme({
    params, cfg: `${cfg.nLayer} layers, ${cfg.nHead} heads, d ${cfg.dModel}, context ${cfg.contextLength}, vocab ${cfg.vocabSize}`,
    trainTokens, valTokens, weights, step: state?.step ?? null, valLoss, batch: train.batchSize, blockSize,
  }));
  return { dir, runDir: run, files, weights, step: state?.step ?? null, valLoss, trainTokens, valTokens, params };
}

function bundleReadme(i: { params: number; cfg: string; trainTokens: number; valTokens: number; weights: boolean; step: number | null; valLoss: number | null; batch: number; blockSize: number }): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const from = i.step !== null ? `step ${i.step} of the run` : 'an imported model';
  const loss = i.valLoss !== null ? `, validation loss ${i.valLoss.toFixed(4)}; the first evaluation (step 0) shows that same loss` : '';
  const start = i.weights
    ? `\`model.safetensors\` holds the weights to continue from (${from}${loss}); \`--from-scratch\` ignores them.`
    : 'There are no weights in this bundle: training starts from a fresh GPT-2 initialisation.';
  return `# Workspace LM training bundle

A GPT-2 (${(i.params / 1e6).toFixed(2)}M parameters: ${i.cfg}) and its dataset
(${n(i.trainTokens)} training tokens, ${n(i.valTokens)} validation tokens), exported by
\`workspace-lm export\` to train with PyTorch on bigger machines. ${start}

| file | what |
|---|---|
| \`train.bin\`, \`val.bin\` | uint16 token ids (nanoGPT layout), files joined by \`<|endoftext|>\` |
| \`meta.json\` | the dataset: vocab size, token counts, held-out files |
| \`tokenizer.json\` | the tokenizer (Hugging Face tokenizers format) |
| \`config.json\` | the model (Hugging Face GPT-2 config) |
| \`train_config.json\` | the run's hyperparameters: the defaults of \`train_torch.py\` |
${i.weights ? '| `model.safetensors` | the weights to continue from (Hugging Face GPT-2 names) |\n' : ''}| \`train_torch.py\` | the training script (DDP, gradient accumulation, bf16/fp16 on GPU) |
| \`gpt2_torch.py\` | the model and the safetensors reader/writer (torch + numpy only) |

Needs PyTorch (1.13 or later) and numpy; no \`transformers\`. Run from this folder.

\`train_torch.py\` trains on the GPT's own cross-entropy. \`workspace-lm train\` trains it, by
default, on the loss of the mixture it is served in (with an n-gram and a copy model built from
this folder's tokens); at the scale a bundle is for — more data than one workspace — the network
carries more of the load, and plain cross-entropy is the usual objective.

## One machine

\`\`\`sh
python3 train_torch.py --out out                      # CPU, or the GPU if there is one
python3 train_torch.py --device cuda --out out        # insist on the GPU (bf16 where supported, else fp16)
python3 train_torch.py --eval-only                    # just the validation loss of the starting weights
\`\`\`

## Several GPUs (or CPU processes) on one machine

\`\`\`sh
torchrun --standalone --nproc-per-node 8 train_torch.py --out out
python3 train_torch.py --nproc-per-node 8 --out out   # the same, without torchrun (torch.multiprocessing.spawn)
\`\`\`

## Several machines

Copy this folder to every machine, then on each (node rank 0 on the machine at \`MASTER\`):

\`\`\`sh
torchrun --nnodes 2 --node-rank 0 --master-addr MASTER --master-port 29500 --nproc-per-node 8 train_torch.py --out out
torchrun --nnodes 2 --node-rank 1 --master-addr MASTER --master-port 29500 --nproc-per-node 8 train_torch.py --out out
\`\`\`

Only global rank 0 writes checkpoints (on the node-rank-0 machine). PyTorch before 2.0 spells
torchrun's options with underscores (\`--nproc_per_node\`, \`--node_rank\`, \`--master_addr\`,
\`--master_port\`).

## Batch, steps and the rest

\`--batch-size\` (default ${i.batch}) is per process and micro-step; a step sees
batch-size × \`--grad-accum\` × processes windows of \`--block-size\` (default ${i.blockSize}) tokens.
Scale \`--lr\` with the global batch if you grow it a lot. \`--max-steps\` (default: the run's
\`--epochs\` over train.bin), \`--eval-every\`, \`--checkpoint-every\`, \`--resume\` (continue from
the newest checkpoint in \`--out\`; on several machines \`--out\` must then be a shared folder),
\`--json\` (one JSON object per line); \`--help\` lists them all.

## Bringing the model back

\`out/\` follows workspace-lm's checkpoint layout (\`checkpoints/step-NNNNNNN/\` with
\`model.safetensors\`, \`config.json\`, \`tokenizer.json\`). Copy it to the machine with the editor and:

\`\`\`sh
cd path/to/project && workspace-lm import /path/to/out   # or: workspace-lm import out --out RUN_DIR (train's --out)
\`\`\`

(or **Workspace LM: Import Model…** in VS Code). The imported model is served right away.
`;
}

/** The model folder to import from a user-given path (root): its newest checkpoint, or the folder itself. */
async function importSource(srcDir: string): Promise<{ src: string; root: string }> {
  const abs = path.resolve(srcDir);
  const st = await fs.stat(abs).catch(() => null);
  if (st === null || !st.isDirectory()) throw new Error(`cannot import ${abs}: folder not found`);
  return { src: (await listCheckpoints(abs))[0] ?? abs, root: abs };
}

/**
 * Checks a model folder and loads it: the three files, regular (a symbolic link only to a file
 * inside the folder), within their size caps; then what loadCheckpointDir checks — config.json's
 * bounds, the tokenizer against it, the weights' header, names, shapes, dtypes, size, no extra
 * tensors, finite values (named by tensor).
 */
async function validateModelDir(src: string, root: string): Promise<{ ck: LoadedCheckpoint; producer: string | null }> {
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    if ((await fs.lstat(path.join(src, f)).catch(() => null)) === null) {
      throw new Error(`missing ${path.join(src, f)} (a model folder has model.safetensors, config.json and tokenizer.json, as train_torch.py writes to its --out folder)`);
    }
  }
  // Nothing outside the folder the user named: a checkpoint folder (or file) linking out is refused.
  const ck = await loadCheckpointDir(src, false, { within: root });
  return { ck, producer: ck.metadata['producer'] ?? null };
}

/**
 * Validates a model folder trained elsewhere and installs it as the served model of runDir (a new
 * checkpoints/step-NNNNNNN past every existing one; see saveImportedCheckpoint). Errors name the
 * file and what is wrong: a missing file, a tensor whose shape config.json contradicts, a
 * tokenizer of another vocabulary size, NaN/Inf weights. srcDir may be a model folder or a folder
 * with checkpoints/ (train_torch.py's --out), whose newest checkpoint is taken.
 */
export async function importModel(srcDir: string, runDir: string): Promise<ImportResult> {
  const { src, root } = await importSource(srcDir);
  let ck: LoadedCheckpoint;
  let producer: string | null;
  try {
    ({ ck, producer } = await validateModelDir(src, root));
  } catch (e) {
    throw new Error(`cannot import ${src}: ${(e as Error).message}`);
  }
  const run = path.resolve(runDir);
  await initRunDir(run);
  let tokenizerMatchesData: boolean | null = null;
  const dataTokPath = runPaths(run).dataTokenizer;
  if (existsSync(dataTokPath)) {
    try {
      tokenizerMatchesData = tokenizerKey(BpeTokenizer.fromHuggingFaceJSON(await readJson(dataTokPath, READ_LIMITS.tokenizer))) === tokenizerKey(ck.tokenizer);
    } catch {
      tokenizerMatchesData = false;
    }
  }
  let trained: ImportResult['trained'] = null;
  const torchState = (await readJson(path.join(src, 'torch_state.json'), READ_LIMITS.state).catch(() => null)) as Record<string, unknown> | null;
  if (torchState !== null && typeof torchState === 'object') {
    const num = (k: string): number | null => (typeof torchState[k] === 'number' ? (torchState[k] as number) : null);
    trained = { step: num('step'), valLoss: num('val_loss'), trainLoss: num('train_loss') };
  }
  const saved = await saveImportedCheckpoint(run, ck.model, ck.tokenizer, { source: src, producer, trained });
  return {
    runDir: run, checkpointDir: saved.dir, step: saved.step, source: src, params: ck.model.numParams,
    vocabSize: ck.model.cfg.vocabSize, contextLength: ck.model.cfg.contextLength, tokenizerMatchesData, trained,
  };
}
