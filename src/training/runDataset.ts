// The run's dataset: built in a worker thread (index, tokenizer, encode) within the memory
// budget and written to data/ (run/layout.ts), or loaded as saved when a resume finds it unchanged.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DEFAULT_MEMORY_CAP_MB, MEMORY_BUDGET, PREP_BYTES_PER_SOURCE_BYTE, PRESETS } from '../ml/config';
import { parameterCount } from '../ml/paramLayout';
import { BpeTokenizer } from '../ml/bpe';
import { tokensFromBytes } from '../ml/dataset';
import type { TrainEventSink } from '../shared/trainEvents';
import type { BuildInput, BuildOutput, BuildStats, PrepareMessage } from '../shared/poolProtocol';
import { buildDataset } from '../corpus/datasetBuilder';
import { distPath } from '../runtime/distFiles';
import { writeAtomic } from '../run/atomicFile';
import { DATASET_FORMAT, DatasetMeta, runPaths } from '../run/layout';
import { defaultThreads, TrainOptions } from './runOptions';

function tokensHash(train: Uint16Array, val: Uint16Array): string {
  return createHash('sha256')
    .update(new Uint8Array(train.buffer, train.byteOffset, train.byteLength))
    .update(new Uint8Array(val.buffer, val.byteOffset, val.byteLength))
    .digest('hex');
}

export interface Prepared {
  tokenizer: BpeTokenizer;
  train: Uint16Array;
  val: Uint16Array;
  hash: string;
  /** How the dataset was built (absent when loaded as saved). */
  stats?: BuildStats;
}

/**
 * How much source the dataset may hold under the memory cap: what is left after the model's
 * weights, moments and per-thread gradients and a fixed runtime allowance, at
 * PREP_BYTES_PER_SOURCE_BYTE bytes of peak memory per source byte.
 */
export function corpusBudget(opts: TrainOptions, vocabSize: number): { maxTotalBytes: number; memoryCapMb: number } {
  const capMb = opts.memoryCapMb ?? DEFAULT_MEMORY_CAP_MB;
  const params = parameterCount({ ...PRESETS[opts.preset].model, vocabSize });
  const threads = opts.threads ?? defaultThreads();
  const modelBytes = params * 4 * (3 + threads) + threads * MEMORY_BUDGET.perThreadBytes;
  const left = capMb * 1e6 - modelBytes - MEMORY_BUDGET.runtimeBytes;
  return { maxTotalBytes: Math.max(1e6, Math.floor(left / PREP_BYTES_PER_SOURCE_BYTE)), memoryCapMb: capMb };
}

/** Runs buildDataset in a worker thread (in-process if the worker bundle is missing). */
function buildInWorker(input: BuildInput, emit: TrainEventSink): Promise<BuildOutput> {
  const file = distPath('prepareWorker.js');
  if (file === null) return buildDataset(input, emit);
  return new Promise<BuildOutput>((resolve, reject) => {
    const worker = new Worker(file, { workerData: input });
    let settled = false;
    worker.on('message', (m: PrepareMessage) => {
      if (m.type === 'event') emit(m.event);
      else if (m.type === 'done') { settled = true; resolve(m.result); }
      else { settled = true; reject(new Error(m.message)); }
    });
    worker.on('error', (e) => { settled = true; reject(e); });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`the dataset worker exited (code ${code}) before finishing`));
    });
  });
}

/** Builds the dataset of the run's folders (tokenizer trained unless given) and writes data/. */
export async function prepareDataset(opts: TrainOptions, vocabSize: number, emit: TrainEventSink, given: BpeTokenizer | null, retrainTokenizerOnDrift = false): Promise<Prepared> {
  const built = await buildInWorker({
    folders: opts.folders, excludeDirs: [path.resolve(opts.outDir)], vocabSize,
    tokenizerJson: given === null ? null : given.toHuggingFaceJSON(),
    retrainTokenizerOnDrift, cacheDir: runPaths(opts.outDir).data,
    ...(opts.excludeGlobs !== undefined ? { excludeGlobs: opts.excludeGlobs } : {}),
    ...(opts.includeGlobs !== undefined ? { includeGlobs: opts.includeGlobs } : {}),
    ...(opts.extraSecretPatterns !== undefined ? { extraSecretPatterns: opts.extraSecretPatterns } : {}),
    ...(opts.allowHomeOrRoot === true ? { allowHomeOrRoot: true } : {}),
    ...corpusBudget(opts, vocabSize),
  }, emit);
  const tokenizer = given !== null && !built.stats.tokenizerTrained ? given : BpeTokenizer.fromHuggingFaceJSON(built.tokenizerJson);
  const { train, val } = built;
  const hash = tokensHash(train, val);
  const run = runPaths(opts.outDir);
  await fs.mkdir(run.data, { recursive: true });
  await writeAtomic(run.trainBin, new Uint8Array(train.buffer, train.byteOffset, train.byteLength));
  await writeAtomic(run.valBin, new Uint8Array(val.buffer, val.byteOffset, val.byteLength));
  await writeAtomic(run.dataTokenizer, JSON.stringify(built.tokenizerJson));
  const meta: DatasetMeta = {
    format: DATASET_FORMAT, version: 1, vocab_size: tokenizer.vocabSize, eot_id: tokenizer.eotId,
    train_tokens: train.length, val_tokens: val.length, train_files: built.trainFiles, train_paths: built.trainPaths,
    val_files: built.valFiles, dataset_hash: hash, corpus_bytes: built.corpusBytes,
    folders: opts.folders.map((f) => path.resolve(f)),
  };
  // Written last: it vouches for the files above (readers look for it first).
  await writeAtomic(run.meta, JSON.stringify(meta, null, 1) + '\n');
  return { tokenizer, train, val, hash, stats: built.stats };
}

/** The dataset a checkpoint was trained on, if data/ still holds it unchanged. */
export async function loadSavedDataset(outDir: string, hash: string, tokenizer: BpeTokenizer): Promise<Prepared | null> {
  const run = runPaths(outDir);
  try {
    const train = tokensFromBytes(await fs.readFile(run.trainBin));
    const val = tokensFromBytes(await fs.readFile(run.valBin));
    if (tokensHash(train, val) !== hash) return null;
    return { tokenizer, train, val, hash };
  } catch {
    return null;
  }
}

