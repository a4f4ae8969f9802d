// From workspace folders to token streams: index every folder, split by file, train (or reuse)
// the tokenizer on the training files, encode both splits. Runs in a worker thread (see
// worker/prepareWorker.ts) so the language server stays responsive and the transient memory of
// tokenizer training is returned when the thread ends; in-process when the worker is not built.

import * as path from 'node:path';
import { BpeTokenizer } from '../ml/bpe';
import { DEFAULT_DATA } from '../ml/config';
import { Document, encodeDocuments, splitByFile } from '../ml/dataset';
import type { TrainEventSink } from '../shared/trainEvents';
import { CorpusSummary, indexFolder } from './corpus';

export interface BuildInput {
  folders: string[];
  /** Never indexed (the run's own output directory). */
  excludeDirs: string[];
  vocabSize: number;
  /** Reuse this tokenizer (Hugging Face JSON) instead of training one. */
  tokenizerJson: unknown | null;
  excludeGlobs?: string[];
  includeGlobs?: string[];
  extraSecretPatterns?: string[];
  /** Source bytes to keep at most, over all folders (beyond it: a deterministic sample). */
  maxTotalBytes?: number;
  /** For the message when sampling happens. */
  memoryCapMb?: number;
}

export interface BuildOutput {
  tokenizerJson: unknown;
  train: Uint16Array;
  val: Uint16Array;
  trainFiles: number;
  valFiles: string[];
  corpusBytes: number;
}

/** Sums per-folder summaries into one (counts per reason and per secret rule add up). */
function mergeSummaries(parts: CorpusSummary[]): CorpusSummary {
  const out: CorpusSummary = { files: 0, bytes: 0, skipped: {}, secrets: {} };
  for (const s of parts) {
    out.files += s.files;
    out.bytes += s.bytes;
    for (const [k, t] of Object.entries(s.skipped)) {
      const o = (out.skipped[k as keyof CorpusSummary['skipped']] ??= { files: 0, bytes: 0, dirs: 0 });
      o.files += t.files;
      o.bytes += t.bytes;
      o.dirs += t.dirs;
    }
    for (const [k, n] of Object.entries(s.secrets)) out.secrets[k] = (out.secrets[k] ?? 0) + n;
  }
  return out;
}

export async function buildDataset(input: BuildInput, emit: TrainEventSink): Promise<BuildOutput> {
  emit({ event: 'phase', phase: 'indexing' });
  const docs: Document[] = [];
  const summaries: CorpusSummary[] = [];
  let seenBefore = 0;
  for (const folder of input.folders) {
    const corpus = await indexFolder(folder, {
      maxFileBytes: DEFAULT_DATA.maxFileBytes,
      excludeDirs: input.excludeDirs,
      ...(input.excludeGlobs !== undefined ? { excludeGlobs: input.excludeGlobs } : {}),
      ...(input.includeGlobs !== undefined ? { includeGlobs: input.includeGlobs } : {}),
      ...(input.extraSecretPatterns !== undefined ? { extraSecretPatterns: input.extraSecretPatterns } : {}),
      ...(input.maxTotalBytes !== undefined ? { maxTotalBytes: Math.floor(input.maxTotalBytes / input.folders.length) } : {}),
      onProgress: (n) => emit({ event: 'progress', phase: 'indexing', fraction: 0, detail: `${seenBefore + n} files` }),
    });
    // In a multi-root workspace each folder's files are named under the folder, so paths (and
    // the by-path validation split) stay distinct.
    const prefix = input.folders.length > 1 ? `${path.basename(folder)}/` : '';
    for (const d of corpus.docs) docs.push({ path: prefix + d.path, bytes: d.bytes });
    summaries.push(corpus.summary);
    seenBefore += corpus.summary.files;
  }
  const summary = mergeSummaries(summaries);
  const dropped = summary.skipped['sampled-out'];
  if (dropped !== undefined && dropped.files > 0) {
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    emit({ event: 'warning', message: `the workspace has ${mb(summary.bytes + dropped.bytes)} MB of code, more than fits the memory cap${input.memoryCapMb !== undefined ? ` of ${input.memoryCapMb} MB` : ''}: training on a ${mb(summary.bytes)} MB sample (${summary.files} of ${summary.files + dropped.files} files)` });
  }
  const split = splitByFile(docs, DEFAULT_DATA.valFraction);
  emit({
    event: 'corpus', files: summary.files, bytes: summary.bytes, train_files: split.train.length, val_files: split.val.length,
    skipped: summary.skipped as Record<string, { files: number; bytes: number; dirs: number }>, secrets: summary.secrets,
  });

  emit({ event: 'phase', phase: 'tokenizer' });
  const t0 = Date.now();
  // Trained on the training files only: held-out files must stay unseen.
  const tokenizer = input.tokenizerJson !== null
    ? BpeTokenizer.fromHuggingFaceJSON(input.tokenizerJson)
    : BpeTokenizer.train(split.train.map((d) => d.bytes), { vocabSize: input.vocabSize, onProgress: (f) => emit({ event: 'progress', phase: 'tokenizer', fraction: f }) });
  emit({ event: 'tokenizer', vocab_size: tokenizer.vocabSize, seconds: (Date.now() - t0) / 1000, reused: input.tokenizerJson !== null });

  emit({ event: 'phase', phase: 'encoding' });
  const trainBytes = split.train.reduce((s, d) => s + d.bytes.length, 0);
  const train = encodeDocuments(split.train, (b) => tokenizer.encodeBytes(b), tokenizer.eotId, (f) => emit({ event: 'progress', phase: 'encoding', fraction: f * 0.9 }));
  const val = encodeDocuments(split.val, (b) => tokenizer.encodeBytes(b), tokenizer.eotId);
  emit({ event: 'progress', phase: 'encoding', fraction: 1 });
  emit({ event: 'dataset', train_tokens: train.length, val_tokens: val.length, bytes_per_token: trainBytes / Math.max(1, train.length) });
  return {
    tokenizerJson: tokenizer.toHuggingFaceJSON(), train, val, trainFiles: split.train.length,
    valFiles: split.val.map((d) => d.path), corpusBytes: summary.bytes,
  };
}
