// `workspace-lm eval`: how good are the suggestions, honestly measured, next to a strong baseline.
//
// On the run's held-out files (data/meta.json's val_files: files the model and its tokenizer
// never trained on) — or on every file of another folder — it reports the served model
// (ml/servedModel.ts: the GPT mixed with the run's n-gram and copy models) and its ablations, each
// decoded through that same served model in another configuration:
//   served        GPT + n-gram + copy (what the editor completes with; the top-level numbers)
//   gpt           the network alone
//   counts        n-gram + copy, no GPT: what the network adds
//   without_copy  GPT + n-gram: what the copy model adds
//   baseline      the n-gram model alone (interpolated modified Kneser-Ney with a file cache,
//                 trained on the same train.bin tokens)
// For each:
//   - validation loss (nats per token) and bits per byte (comparable across tokenizers), from the
//     per-token formula the served distribution follows (servedTokenProbability);
//   - next-line completion at N random cut points (a random position inside a random non-blank
//     line; given the file up to the cut, predict the rest of the line), scored by CodeXGLUE's
//     exact match and edit similarity (metrics.ts). Completions come from the editor's own
//     CompletionEngine (token healing, stop rules, greedy), so the metric is what users get;
//   - the served model with fill-in-the-middle (the rest of the file after the line as the
//     suffix) when the model was trained with FIM;
//   - the served weights are fitted on held-out files too, so here they are cross-fitted: files
//     are split in two halves by a hash of the path, and each half is scored with the weights
//     fitted on the other (no token is scored by weights that saw it);
//   - a breakdown by file extension and a few worked examples.
// The copy model leaves out each evaluated file's own training copy (with --all-files the files
// are in train.bin). Deterministic for a given checkpoint, files and seed.

import * as path from 'node:path';
import { DEFAULT_COMPLETION_SETTINGS, DEFAULT_DATA, EVAL_DEFAULTS, SERVING } from '../ml/config';
import { hashString, Rng } from '../ml/rng';
import { bitsPerByte, LineScores } from '../ml/metrics';
import { copyTokenScores, gptTokenLosses, ngramTokenScores } from '../ml/mixture';
import { copyBucketNames } from '../ml/copyModel';
import { bucketNames, NgramSession } from '../ml/ngram';
import { CopySession } from '../ml/copyModel';
import { appendScores, emptyScores, fitServedWeights, ServedConfig, servedTokenProbability, TokenScores } from '../ml/servedModel';
import type { Document } from '../ml/dataset';
import { tokensFromBytes } from '../ml/dataset';
import { CompletionEngine, CompletionModel } from '../completion/engine';
import { assembleServedModel, loadServingModel } from '../completion/servingModel';
import { buildCountModels } from '../completion/countModels';
import { indexFolder } from '../corpus/corpus';
import { findRunDir, readDatasetMeta, runPaths } from '../run/layout';
import type { DatasetMeta } from '../run/layout';
import type { EvalExample, EvalReport, LanguageRow } from '../run/evalReport';
import { promises as fs } from 'node:fs';

export { gptTokenLosses };

export interface EvalOptions {
  /** A run directory (or one of its checkpoints). */
  checkpoint: string;
  /** Where the held-out files are (the folder the run trained on), or another folder to evaluate. */
  folder?: string;
  /** Index a folder that is the home folder, an ancestor of it, or a filesystem root. */
  allowHomeOrRoot?: boolean;
  /** Evaluate every file of `folder`, even if it holds the run's held-out files. */
  allFiles?: boolean;
  /** Next-line cut points (default 300). */
  cuts?: number;
  seed?: number;
  /** n-gram order of the baseline (default 4). */
  ngramOrder?: number;
  /** Beam width of the completion engine, for every model (default: the engine's default). */
  beamWidth?: number;
  /** Bytes of files scored for loss/bpb at most (a deterministic sample beyond; default 1 MB). */
  maxBytes?: number;
  onProgress?: (phase: string, fraction: number) => void;
}


function language(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return ext === '' ? path.basename(file) : ext;
}

interface Cut { doc: number; offset: number; lineEnd: number; line: number }

/** N cut points: random non-blank lines (without replacement), a random position inside each, before its last non-blank character. */
export function chooseCuts(texts: string[], n: number, seed: number): Cut[] {
  const lines: { doc: number; start: number; end: number; line: number }[] = [];
  texts.forEach((text, doc) => {
    let start = 0;
    let line = 1;
    while (start <= text.length) {
      const nl = text.indexOf('\n', start);
      const end = nl < 0 ? text.length : nl;
      if (/\S/.test(text.slice(start, end))) lines.push({ doc, start, end, line });
      if (nl < 0) break;
      start = nl + 1;
      line++;
    }
  });
  const rng = new Rng(seed);
  const k = Math.min(n, lines.length);
  // Partial Fisher-Yates: the first k of a seeded shuffle.
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(lines.length - i);
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
  }
  return lines.slice(0, k).map((l) => {
    const text = texts[l.doc]!;
    const body = text.slice(l.start, l.end);
    const first = l.start + (/\S/.exec(body)?.index ?? 0);
    const last = l.start + body.trimEnd().length - 1; // the last non-blank character (trimEnd: /\s*$/ is quadratic on long blank runs)
    let offset = first + rng.int(last - first + 1);
    // Never between the halves of a surrogate pair.
    const c = text.charCodeAt(offset);
    if (c >= 0xdc00 && c <= 0xdfff && offset > first) offset--;
    return { doc: l.doc, offset, lineEnd: l.end, line: l.line };
  });
}

/** The files to evaluate and what they are. */
async function loadDocuments(opts: EvalOptions, runDir: string | null, meta: Partial<DatasetMeta> | null): Promise<{ docs: Document[]; source: 'held-out' | 'folder'; folder: string }> {
  const root = opts.folder ?? meta?.root ?? meta?.folders?.[0];
  if (root === undefined) {
    throw new Error('eval needs the folder the run trained on (its held-out files are listed in data/meta.json by relative path): workspace-lm eval --checkpoint DIR <folder>');
  }
  const folder = path.resolve(root);
  const corpus = await indexFolder(folder, { maxFileBytes: DEFAULT_DATA.maxFileBytes, ...(runDir !== null ? { excludeDirs: [runDir] } : {}), ...(opts.allowHomeOrRoot === true ? { allowHomeOrRoot: true } : {}) });
  const valFiles = meta?.val_files ?? [];
  if (opts.allFiles !== true && valFiles.length > 0) {
    // Read through the same corpus pipeline as training (same redaction), so the text matches.
    const want = new Set(valFiles);
    const held = corpus.docs.filter((d) => want.has(d.path));
    // A folder that holds (most of) the held-out files is the run's own: use exactly those.
    if (held.length >= Math.max(1, valFiles.length / 2)) return { docs: held, source: 'held-out', folder };
    if (opts.folder === undefined) throw new Error(`only ${held.length} of the run's ${valFiles.length} held-out files were found under ${folder}: pass the folder the run trained on`);
  }
  return { docs: corpus.docs, source: 'folder', folder };
}

/** Keeps a deterministic sample of documents (by a hash of the path) of at most maxBytes. */
function capBytes(docs: Document[], maxBytes: number): Document[] {
  const total = docs.reduce((s, d) => s + d.bytes.length, 0);
  if (total <= maxBytes) return docs;
  const keyed = docs.map((d) => ({ d, k: new Rng(hashString(d.path)).nextU32() }));
  keyed.sort((a, b) => a.k - b.k);
  const out: Document[] = [];
  let sum = 0;
  for (const { d } of keyed) {
    if (sum + d.bytes.length > maxBytes && out.length > 0) continue;
    out.push(d);
    sum += d.bytes.length;
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

const NOOP = (): boolean => false;

/** The configurations of the served model eval decodes and scores (see the file comment). */
const CONFIGS = {
  served: { mode: 'served' },
  gpt: { mode: 'gpt' },
  counts: { mode: 'counts' },
  without_copy: { mode: 'served', copy: false },
  baseline: { mode: 'counts', copy: false },
} as const satisfies Record<string, ServedConfig>;
type ConfigName = keyof typeof CONFIGS;
const CONFIG_NAMES = Object.keys(CONFIGS) as ConfigName[];

export async function runEvaluation(opts: EvalOptions): Promise<EvalReport> {
  const t0 = performance.now();
  const progress = opts.onProgress ?? ((): void => undefined);
  const cutsWanted = opts.cuts ?? EVAL_DEFAULTS.cuts;
  const seed = opts.seed ?? EVAL_DEFAULTS.seed;
  const order = opts.ngramOrder ?? SERVING.ngramOrder;

  // The GPT alone; the count models are built here (by the same code the server uses) so each
  // half of the files can be served with weights fitted on the other.
  const served = await loadServingModel(opts.checkpoint, { counts: false });
  const tok = served.tokenizer;
  const runDir = await findRunDir(opts.checkpoint, served.dir);
  if (runDir === null) throw new Error(`no data/meta.json next to ${path.resolve(opts.checkpoint)}: eval needs the run directory (the train --out folder), which holds the training tokens`);
  const meta = await readDatasetMeta(runDir);
  const trainTokens = tokensFromBytes(await fs.readFile(runPaths(runDir).trainBin));

  progress('files', 0);
  const loaded = await loadDocuments(opts, runDir, meta);
  const docs = capBytes(loaded.docs, opts.maxBytes ?? EVAL_DEFAULTS.maxBytes);
  if (docs.length === 0) throw new Error(`no files to evaluate in ${loaded.folder}`);
  const decoder = new TextDecoder('utf-8');
  const texts = docs.map((d) => decoder.decode(d.bytes));
  const seqs = docs.map((d) => [tok.eotId, ...tok.encodeBytes(d.bytes), tok.eotId]);
  const bytes = docs.reduce((s, d) => s + d.bytes.length, 0);
  const tokens = seqs.reduce((s, q) => s + q.length - 1, 0);
  // Two halves of the files, by a hash of the path (stable across runs and seeds).
  const fold = docs.map((d) => hashString(d.path) & 1);

  // --- The count models on train.bin (the n-gram's cache tuned on train.bin's last files first).
  progress('n-gram', 0);
  const tn0 = performance.now();
  const counts = buildCountModels(trainTokens, tok, meta?.train_paths, order);
  const { kn, cache } = counts;
  const knSeconds = (performance.now() - tn0) / 1000;
  progress('n-gram', 1);

  // --- Per-token scores of the three parts; the served weights fitted per half; the losses.
  const gptNll = gptTokenLosses(served.model, seqs, (f) => progress('loss', f));
  const knScores = ngramTokenScores(new NgramSession(kn, cache), seqs);
  const copyScores = copyTokenScores(new CopySession(counts.corpus, tok.eotId), seqs, docs.map((d) => d.path));
  const scoresOf = (keep: (d: number) => boolean): TokenScores => {
    const out = emptyScores();
    seqs.forEach((_, d) => {
      if (keep(d)) appendScores(out, gptNll[d]!, knScores[d]!, copyScores[d]!);
    });
    return out;
  };
  // Fitted on the OTHER half's tokens. When one half is empty (one or a few files) there is no
  // other half: then the weights are fitted on every file, and the report says so.
  const crossFitted = fold.includes(0) && fold.includes(1);
  const folds = [0, 1].map((f) => fitServedWeights(crossFitted ? scoresOf((d) => fold[d] !== f) : scoresOf(() => true), kn.order));
  /** Summed NLL (nats) per configuration, in all and per language. */
  const nll = Object.fromEntries(CONFIG_NAMES.map((c) => [c, 0])) as Record<ConfigName, number>;
  const langs = new Map<string, { files: number; bytes: number; nll: Record<ConfigName, number> }>();
  docs.forEach((d, i) => {
    const g = gptNll[i]!, k = knScores[i]!, c = copyScores[i]!;
    const w = folds[fold[i]!]!;
    const lang = language(d.path);
    const row = langs.get(lang) ?? { files: 0, bytes: 0, nll: Object.fromEntries(CONFIG_NAMES.map((n) => [n, 0])) as Record<ConfigName, number> };
    row.files++; row.bytes += d.bytes.length;
    for (const name of CONFIG_NAMES) {
      let sum = 0;
      for (let t = 0; t < g.length; t++) {
        const p = servedTokenProbability(CONFIGS[name], w, Math.exp(-g[t]!), Math.exp(-k.nll[t]!), k.bucket[t]!, c.p[t]!, c.bucket[t]!);
        // Floored: the copy model alone can give a token probability 0 (never served alone).
        sum -= Math.log(Math.max(p, 1e-300));
      }
      nll[name] += sum;
      row.nll[name] += sum;
    }
    langs.set(lang, row);
  });

  // --- Next-line completion through the editor's engine, for each configuration.
  const settings = { ...DEFAULT_COMPLETION_SETTINGS, mode: 'line' as const, temperature: 0, topP: 1, minMeanLogProb: -Infinity };
  const engineOpts = { useCache: false, reuseSuggestions: false, ...(opts.beamWidth !== undefined ? { beamWidth: opts.beamWidth } : {}) };
  /** engines[config][fold]: the served model in that configuration with that fold's weights. */
  const engines = Object.fromEntries(CONFIG_NAMES.map((name) => [name, folds.map((weights) => {
    const model = assembleServedModel(served.session, { models: counts, weights }, tok.vocabSize, CONFIGS[name]);
    const completionModel: CompletionModel = { ...served, decoder: () => model };
    return new CompletionEngine(() => completionModel, { ...settings, model: CONFIGS[name].mode }, engineOpts);
  })])) as Record<ConfigName, CompletionEngine[]>;
  // Prefix-only requests must not see the suffix: a FIM model gets one only in the FIM variant.
  const cuts = chooseCuts(texts, cutsWanted, seed);
  const lines = Object.fromEntries(CONFIG_NAMES.map((n) => [n, new LineScores()])) as Record<ConfigName, LineScores>;
  const fimLines = new LineScores();
  const examples: EvalExample[] = [];
  for (let c = 0; c < cuts.length; c++) {
    const cut = cuts[c]!;
    const text = texts[cut.doc]!;
    const file = docs[cut.doc]!.path;
    const lang = language(file);
    const prefix = text.slice(0, cut.offset);
    const truth = text.slice(cut.offset, cut.lineEnd);
    // A path-like URI, so the copy model can recognise (and leave out) the file's training copy.
    const req = { uri: `eval:/${file}`, text: prefix, offset: prefix.length };
    const got = {} as Record<ConfigName, string>;
    for (const name of CONFIG_NAMES) {
      got[name] = (await engines[name][fold[cut.doc]!]!.complete(req, NOOP)).text;
      lines[name].add(got[name], truth, lang);
    }
    let servedFim: string | undefined;
    if (served.fim) {
      // The rest of the file after the line is the suffix (the line's own rest is the answer).
      servedFim = (await engines.served[fold[cut.doc]!]!.complete({ uri: req.uri, text: prefix + text.slice(cut.lineEnd), offset: prefix.length }, NOOP)).text;
      fimLines.add(servedFim, truth, lang);
    }
    if (examples.length < 3) {
      const lineStart = prefix.lastIndexOf('\n') + 1;
      const prevStart = prefix.lastIndexOf('\n', Math.max(0, lineStart - 2)) + 1;
      examples.push({ file, line: cut.line, before: prefix.slice(prevStart), truth, model: got.served, ...(servedFim !== undefined ? { model_fim: servedFim } : {}), gpt: got.gpt, counts: got.counts, baseline: got.baseline });
    }
    progress('next-line', (c + 1) / cuts.length);
  }

  const byLanguage = (name: ConfigName): Record<string, LanguageRow> => {
    const out: Record<string, LanguageRow> = {};
    for (const [lang, row] of [...langs].sort((a, b) => b[1].bytes - a[1].bytes)) {
      const g = lines[name].groups.get(lang);
      out[lang] = {
        files: row.files, bytes: row.bytes, bits_per_byte: bitsPerByte(row.nll[name], row.bytes),
        next_line: g === undefined ? { exact_match: NaN, edit_similarity: NaN, n: 0 } : { exact_match: g.exact / g.n, edit_similarity: g.similarity / g.n, n: g.n },
      };
    }
    return out;
  };
  const modelEval = (name: ConfigName) => ({ val_loss: nll[name] / tokens, bits_per_byte: bitsPerByte(nll[name], bytes), next_line: lines[name].summary(), by_language: byLanguage(name) });
  const report: EvalReport = {
    format: 'workspace-lm/eval',
    model: 'gpt+ngram',
    checkpoint: served.dir, step: served.step, source: loaded.source, folder: loaded.folder,
    files: docs.length, bytes, tokens, cuts: cuts.length, seed,
    ...modelEval('served'),
    ...(served.fim ? { next_line_fim: fimLines.summary() } : {}),
    gpt: modelEval('gpt'),
    baseline: {
      model: `interpolated modified Kneser-Ney ${order}-gram + file cache`, order, cache, train_tokens: kn.stats.tokens, train_seconds: knSeconds,
      ...modelEval('baseline'),
    },
    mixture: { buckets: bucketNames(kn.order), folds: folds.map((f) => f.mixture), cross_fitted: crossFitted },
    copy: { buckets: copyBucketNames(), folds: folds.map((f) => f.copy), over_ngram_folds: folds.map((f) => f.copyOverNgram) },
    counts: modelEval('counts'),
    without_copy: modelEval('without_copy'),
    examples,
    seconds: (performance.now() - t0) / 1000,
    evaluated_at: new Date().toISOString(),
  };
  return report;
}
