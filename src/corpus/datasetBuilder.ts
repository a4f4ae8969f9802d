// From workspace folders to token streams: index every folder, split by file, train (or reuse)
// the tokenizer on the training files, encode both splits. Runs in a worker thread (see
// worker/prepareWorker.ts) so the language server stays responsive and the transient memory of
// tokenizer training is returned when the thread ends; in-process when the worker is not built.
//
// Incremental: with a reused tokenizer, the tokens of every file are kept in data/files.bin with
// an index (data/files.json: path, size, mtime, offset). A rebuild reads and encodes only the
// files whose size or modification time changed; the others' tokens are copied from the cache.
// The index is keyed by the tokenizer and by the redaction fingerprint (the built-in rules, their
// version and the user's extraSecretPatterns): cached tokens are redacted text, so after a rule
// change every file is read and redacted again.
// If too much changed (TOKENIZER_DRIFT of the bytes), the tokenizer is trained anew instead.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BpeTokenizer } from '../ml/bpe';
import { DEFAULT_DATA } from '../ml/config';
import { splitByFile } from '../ml/dataset';
import type { TrainEventSink } from '../shared/trainEvents';
import type { BuildInput, BuildOutput, BuildStats } from '../shared/poolProtocol';

export type { BuildInput, BuildOutput, BuildStats };
import { CorpusDoc, CorpusSummary, indexFolder } from './corpus';
import { redactionFingerprint } from './secrets';
import { writeAtomic } from '../run/atomicFile';
import { FILE_TOKENS_BIN, FILE_TOKENS_INDEX } from '../run/layout';

/** Fraction of changed bytes above which a reused tokenizer is retrained (if allowed). */
export const TOKENIZER_DRIFT = 0.3;

interface CacheEntry { path: string; size: number; mtimeMs: number; length: number; offset: number; tokens: number; secrets?: Record<string, number> }
/** files.json. `bin` is the sha256 of the files.bin it indexes: a kill between the two renames (a new files.bin, the old index) is detected, never read as tokens of other files. */
interface CacheIndex { format: 'workspace-lm/file-tokens'; version: 3; tokenizer: string; redaction: string; bin: string; entries: CacheEntry[] }

const tokenizerId = (json: unknown): string => createHash('sha256').update(JSON.stringify(json)).digest('hex');

async function readCache(dir: string, tokenizer: string, redaction: string): Promise<{ entries: Map<string, CacheEntry>; tokens: Uint16Array } | null> {
  try {
    const index = JSON.parse(await fs.readFile(path.join(dir, FILE_TOKENS_INDEX), 'utf8')) as CacheIndex;
    // Another tokenizer, or tokens redacted under other rules (or other extra patterns): not reusable.
    if (index.format !== 'workspace-lm/file-tokens' || index.version !== 3 || index.tokenizer !== tokenizer || index.redaction !== redaction) return null;
    const bin = await fs.readFile(path.join(dir, FILE_TOKENS_BIN));
    if (createHash('sha256').update(bin).digest('hex') !== index.bin) return null;
    const tokens = new Uint16Array(Uint8Array.prototype.slice.call(bin).buffer);
    const entries = new Map(index.entries.filter((e) => e.offset + e.tokens <= tokens.length).map((e) => [e.path, e]));
    return { entries, tokens };
  } catch {
    return null; // no cache yet, or unreadable: everything is read
  }
}

async function writeCache(dir: string, tokenizer: string, redaction: string, docs: { doc: CorpusDoc; key: string; ids: Uint16Array }[]): Promise<void> {
  const total = docs.reduce((s, d) => s + d.ids.length, 0);
  const bin = new Uint16Array(total);
  const entries: CacheEntry[] = [];
  let offset = 0;
  for (const { doc, key, ids } of docs) {
    bin.set(ids, offset);
    entries.push({ path: key, size: doc.size, mtimeMs: doc.mtimeMs, length: doc.length, offset, tokens: ids.length, ...(doc.secrets !== undefined ? { secrets: doc.secrets } : {}) });
    offset += ids.length;
  }
  await fs.mkdir(dir, { recursive: true });
  // files.bin first, the index last; the index names the files.bin it was made for.
  const binHash = await writeAtomic(path.join(dir, FILE_TOKENS_BIN), new Uint8Array(bin.buffer));
  const index: CacheIndex = { format: 'workspace-lm/file-tokens', version: 3, tokenizer, redaction, bin: binHash, entries };
  await writeAtomic(path.join(dir, FILE_TOKENS_INDEX), JSON.stringify(index));
}

/** Sums per-folder summaries into one (counts per reason and per secret rule add up). */
function mergeSummaries(parts: CorpusSummary[]): CorpusSummary {
  const out: CorpusSummary = { files: 0, bytes: 0, skipped: {}, secrets: {}, filesRead: 0 };
  for (const s of parts) {
    out.files += s.files;
    out.bytes += s.bytes;
    out.filesRead += s.filesRead;
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

/** Indexes every folder; `reuse` marks unchanged files (not read). Paths are prefixed in multi-root workspaces. */
async function indexAll(input: BuildInput, emit: TrainEventSink, reuse: ((key: string, size: number, mtimeMs: number) => { length: number } | null) | null): Promise<{ docs: { doc: CorpusDoc; key: string }[]; summary: CorpusSummary }> {
  const docs: { doc: CorpusDoc; key: string }[] = [];
  const summaries: CorpusSummary[] = [];
  let seenBefore = 0;
  for (const folder of input.folders) {
    // In a multi-root workspace each folder's files are named under the folder, so paths (and
    // the by-path validation split) stay distinct.
    const prefix = input.folders.length > 1 ? `${path.basename(folder)}/` : '';
    const corpus = await indexFolder(folder, {
      maxFileBytes: DEFAULT_DATA.maxFileBytes,
      excludeDirs: input.excludeDirs,
      ...(input.excludeGlobs !== undefined ? { excludeGlobs: input.excludeGlobs } : {}),
      ...(input.includeGlobs !== undefined ? { includeGlobs: input.includeGlobs } : {}),
      ...(input.extraSecretPatterns !== undefined ? { extraSecretPatterns: input.extraSecretPatterns } : {}),
      ...(input.allowHomeOrRoot === true ? { allowHomeOrRoot: true } : {}),
      ...(input.maxTotalBytes !== undefined ? { maxTotalBytes: Math.floor(input.maxTotalBytes / input.folders.length) } : {}),
      ...(reuse !== null ? { reuse: (rel: string, size: number, mtimeMs: number) => reuse(prefix + rel, size, mtimeMs) } : {}),
      onProgress: (n) => emit({ event: 'progress', phase: 'indexing', fraction: 0, detail: `${seenBefore + n} files` }),
    });
    for (const d of corpus.docs) docs.push({ doc: d, key: prefix + d.path });
    summaries.push(corpus.summary);
    seenBefore += corpus.summary.files;
  }
  return { docs, summary: mergeSummaries(summaries) };
}

export async function buildDataset(input: BuildInput, emit: TrainEventSink): Promise<BuildOutput> {
  emit({ event: 'phase', phase: 'indexing' });
  const givenId = input.tokenizerJson !== null ? tokenizerId(input.tokenizerJson) : null;
  const redaction = redactionFingerprint(input.extraSecretPatterns ?? []);
  const cache = givenId !== null && input.cacheDir !== undefined ? await readCache(input.cacheDir, givenId, redaction) : null;
  const reuse = cache === null ? null : (key: string, size: number, mtimeMs: number) => {
    const e = cache.entries.get(key);
    return e !== undefined && e.size === size && e.mtimeMs === mtimeMs ? { length: e.length, ...(e.secrets !== undefined ? { secrets: e.secrets } : {}) } : null;
  };
  let { docs, summary } = await indexAll(input, emit, reuse);
  let filesRead = summary.filesRead;
  let tokenizerJson = input.tokenizerJson;
  if (tokenizerJson !== null && input.retrainTokenizerOnDrift === true) {
    const changed = docs.reduce((s, d) => s + (d.doc.unchanged ? 0 : d.doc.length), 0);
    if (changed > TOKENIZER_DRIFT * Math.max(1, summary.bytes)) {
      emit({ event: 'warning', message: `${Math.round((100 * changed) / Math.max(1, summary.bytes))}% of the code changed: training a new tokenizer` });
      tokenizerJson = null;
      // The tokenizer needs every file's text: read them all again.
      if (cache !== null) {
        ({ docs, summary } = await indexAll(input, emit, null));
        filesRead += summary.filesRead;
      }
    }
  }

  const dropped = summary.skipped['sampled-out'];
  if (dropped !== undefined && dropped.files > 0) {
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    emit({ event: 'warning', message: `the workspace has ${mb(summary.bytes + dropped.bytes)} MB of code, more than fits the memory cap${input.memoryCapMb !== undefined ? ` of ${input.memoryCapMb} MB` : ''}: training on a ${mb(summary.bytes)} MB sample (${summary.files} of ${summary.files + dropped.files} files)` });
  }
  const byKey = new Map(docs.map((d) => [d.key, d]));
  const split = splitByFile(docs.map((d) => ({ path: d.key, bytes: d.doc.bytes })), DEFAULT_DATA.valFraction);
  emit({
    event: 'corpus', files: summary.files, bytes: summary.bytes, train_files: split.train.length, val_files: split.val.length,
    skipped: summary.skipped as Record<string, { files: number; bytes: number; dirs: number }>, secrets: summary.secrets,
  });

  emit({ event: 'phase', phase: 'tokenizer' });
  const t0 = Date.now();
  // Trained on the training files only: held-out files must stay unseen.
  const tokenizer = tokenizerJson !== null
    ? BpeTokenizer.fromHuggingFaceJSON(tokenizerJson)
    : BpeTokenizer.train(split.train.map((d) => d.bytes), { vocabSize: input.vocabSize, onProgress: (f) => emit({ event: 'progress', phase: 'tokenizer', fraction: f }) });
  const trained = tokenizerJson === null;
  const outJson = trained ? tokenizer.toHuggingFaceJSON() : tokenizerJson;
  emit({ event: 'tokenizer', vocab_size: tokenizer.vocabSize, seconds: (Date.now() - t0) / 1000, reused: !trained });

  emit({ event: 'phase', phase: 'encoding' });
  const stats: BuildStats = { filesRead, filesEncoded: 0, filesReused: 0, tokenizerTrained: trained };
  const encoded: { doc: CorpusDoc; key: string; ids: Uint16Array }[] = [];
  const totalBytes = Math.max(1, summary.bytes);
  let doneBytes = 0;
  for (const { doc, key } of docs) {
    let ids: Uint16Array;
    const cached = cache?.entries.get(key);
    if (doc.unchanged && cached !== undefined && !trained) {
      ids = cache!.tokens.subarray(cached.offset, cached.offset + cached.tokens);
      stats.filesReused++;
    } else {
      ids = Uint16Array.from(tokenizer.encodeBytes(doc.bytes));
      stats.filesEncoded++;
    }
    encoded.push({ doc, key, ids });
    doneBytes += doc.length;
    emit({ event: 'progress', phase: 'encoding', fraction: 0.9 * (doneBytes / totalBytes) });
  }
  const tokensOf = new Map(encoded.map((e) => [e.key, e.ids]));
  // Files joined with <|endoftext|>, in the split's order (nanoGPT layout).
  const join = (paths: string[]): Uint16Array => {
    const out = new Uint16Array(paths.reduce((s, p) => s + tokensOf.get(p)!.length + 1, 0));
    let pos = 0;
    for (const p of paths) {
      const ids = tokensOf.get(p)!;
      out.set(ids, pos);
      pos += ids.length;
      out[pos++] = tokenizer.eotId;
    }
    return out;
  };
  const train = join(split.train.map((d) => d.path));
  const val = join(split.val.map((d) => d.path));
  if (input.cacheDir !== undefined) await writeCache(input.cacheDir, tokenizerId(outJson), redaction, encoded);
  emit({ event: 'progress', phase: 'encoding', fraction: 1 });
  const trainBytes = split.train.reduce((s, d) => s + byKey.get(d.path)!.doc.length, 0);
  emit({ event: 'dataset', train_tokens: train.length, val_tokens: val.length, bytes_per_token: trainBytes / Math.max(1, train.length) });
  return {
    tokenizerJson: outJson, train, val, trainFiles: split.train.length, trainPaths: split.train.map((d) => d.path),
    valFiles: split.val.map((d) => d.path), corpusBytes: summary.bytes, stats,
  };
}
