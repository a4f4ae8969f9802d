// `workspace-lm eval`: how good are the suggestions, honestly measured, next to a strong baseline.
//
// On the run's held-out files (data/meta.json's val_files: files the model and its tokenizer
// never trained on) — or on every file of another folder — it reports, for the GPT and for an
// interpolated Kneser-Ney n-gram model with a file cache trained on the same train.bin tokens
// (the baseline), and for the model as served — the GPT mixed with that same n-gram model by
// bucketed weights (ml/mixture.ts, ngramCompanion.ts):
//   - validation loss (nats per token) and bits per byte (comparable across tokenizers);
//   - next-line completion at N random cut points (a random position inside a random non-blank
//     line; given the file up to the cut, predict the rest of the line), scored by CodeXGLUE's
//     exact match and edit similarity (metrics.ts). Completions come from the editor's own
//     CompletionEngine (token healing, stop rules, greedy), so the metric is what users get;
//   - the same with fill-in-the-middle (the rest of the file after the line as the suffix) when
//     the model was trained with FIM;
//   - the served model's weights are fitted on held-out files too, so here they are cross-fitted:
//     files are split in two halves by a hash of the path, and each half is scored with the
//     weights fitted on the other (no token is scored by weights that saw it);
//   - a breakdown by file extension and a few worked examples.
// Deterministic for a given checkpoint, files and seed.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_DATA } from '../ml/config';
import { hashString, Rng } from '../ml/rng';
import { bitsPerByte, LineScores } from '../ml/metrics';
import { bucketNames, copyTokenScores, fitCopyWeights, gptTokenLosses, MixtureWeights, ngramTokenScores } from '../ml/mixture';
import { COPY_BUCKETS, copyBucketNames, CopyCorpus, CopySession } from '../ml/copyModel';
import { CacheParams, DEFAULT_NGRAM_ORDER, NgramSession } from '../ml/ngram';
import type { Document } from '../ml/dataset';
import { DEFAULT_COMPLETION_SETTINGS } from '../shared/protocol';
import { CompletionEngine, CompletionModel } from '../completion/engine';
import { indexFolder } from '../corpus/corpus';
import { appendScores, emptyScores, findRunDir, fitWeights, TokenScores, trainNgram } from '../completion/countModels';
import { tokensFromBytes } from '../ml/dataset';
import { loadServingModel, ServingModel } from '../completion/servingModel';

export { gptTokenLosses };

export interface EvalOptions {
  /** A run directory (or one of its checkpoints). */
  checkpoint: string;
  /** Where the held-out files are (the folder the run trained on), or another folder to evaluate. */
  folder?: string;
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

export interface LineSummary { exact_match: number; edit_similarity: number; n: number }

export interface LanguageRow {
  files: number;
  bytes: number;
  bits_per_byte: number;
  next_line: LineSummary;
}

export interface ModelEval {
  /**
   * Mean cross-entropy per token, nats, over every token of the files and the eot ending each
   * (the GPT with windows of its context at stride P/2 — so not quite the trainer's val loss,
   * which uses non-overlapping windows of the concatenated val.bin).
   */
  val_loss: number;
  bits_per_byte: number;
  next_line: LineSummary;
  by_language: Record<string, LanguageRow>;
}

export interface EvalExample {
  file: string;
  line: number;
  /** The end of the text before the cut (the last line or so), for display. */
  before: string;
  truth: string;
  /** The served model (GPT + n-gram), prefix only. */
  model: string;
  /** The served model with the code below the line as the FIM suffix. */
  model_fim?: string;
  gpt: string;
  baseline: string;
}

/**
 * Top-level numbers are the model as the editor serves it: the GPT mixed with the n-gram
 * companion (model: 'gpt+ngram'), or the GPT alone when the run has no training data to build
 * one from ('gpt'). `gpt` is the network alone, `baseline` the n-gram model alone.
 */
export interface EvalReport extends ModelEval {
  model: 'gpt+ngram' | 'gpt';
  format: 'workspace-lm/eval';
  checkpoint: string;
  step: number | null;
  /** 'held-out': the run's validation files; 'folder': every file of another folder. */
  source: 'held-out' | 'folder';
  folder: string;
  files: number;
  bytes: number;
  tokens: number;
  cuts: number;
  seed: number;
  /** Next-line with fill-in-the-middle (absent when the model was trained without FIM). */
  next_line_fim?: LineSummary;
  gpt: ModelEval;
  baseline: ModelEval & { model: string; order: number; cache: CacheParams; train_tokens: number; train_seconds: number };
  /** The GPT's share λ per n-gram bucket, fitted on each half of the files (cross-fitting). */
  mixture: { buckets: string[]; folds: MixtureWeights[]; cross_fitted: boolean };
  /** The copy model's share μ per match-length bucket, likewise. */
  copy: { buckets: string[]; folds: MixtureWeights[] };
  /** The served model without its copy model (GPT + n-gram only): what the copy model adds. */
  without_copy: ModelEval;
  /** The n-gram model + the copy model, without the GPT: what the GPT adds. */
  ngram_copy: { next_line: LineSummary };
  examples: EvalExample[];
  seconds: number;
  evaluated_at: string;
}

interface DatasetMeta { val_files?: string[]; eot_id?: number; root?: string; folders?: string[] }

/** Longest completion, as in the editor's default settings. */
const MAX_NEW_TOKENS = DEFAULT_COMPLETION_SETTINGS.maxTokens;
/** History the n-gram model (and its cache) sees before a cut, in tokens. */
const NGRAM_CONTEXT = 4096;

function language(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return ext === '' ? path.basename(file) : ext;
}

/** A CompletionModel around an n-gram session (contextLength = how much of the file it sees). */
function ngramCompletionModel(served: ServingModel, session: NgramSession): CompletionModel {
  return { step: null, model: { cfg: { contextLength: NGRAM_CONTEXT } }, tokenizer: served.tokenizer, session, fim: false };
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
    const last = l.start + body.search(/\s*$/) - 1; // index of the last non-blank character
    let offset = first + rng.int(last - first + 1);
    // Never between the halves of a surrogate pair.
    const c = text.charCodeAt(offset);
    if (c >= 0xdc00 && c <= 0xdfff && offset > first) offset--;
    return { doc: l.doc, offset, lineEnd: l.end, line: l.line };
  });
}

/** The files to evaluate and what they are. */
async function loadDocuments(opts: EvalOptions, runDir: string | null, meta: DatasetMeta | null): Promise<{ docs: Document[]; source: 'held-out' | 'folder'; folder: string }> {
  const root = opts.folder ?? meta?.root ?? meta?.folders?.[0];
  if (root === undefined) {
    throw new Error('eval needs the folder the run trained on (its held-out files are listed in data/meta.json by relative path): workspace-lm eval --checkpoint DIR <folder>');
  }
  const folder = path.resolve(root);
  const corpus = await indexFolder(folder, { maxFileBytes: DEFAULT_DATA.maxFileBytes, ...(runDir !== null ? { excludeDirs: [runDir] } : {}) });
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

export async function runEvaluation(opts: EvalOptions): Promise<EvalReport> {
  const t0 = performance.now();
  const progress = opts.onProgress ?? ((): void => undefined);
  const cutsWanted = opts.cuts ?? 300;
  const seed = opts.seed ?? 0;
  const order = opts.ngramOrder ?? DEFAULT_NGRAM_ORDER;

  // The GPT alone; the n-gram half is built here (by the same code the server uses) so each
  // half of the files can be served with weights fitted on the other.
  const served = await loadServingModel(opts.checkpoint, { ngram: false });
  const tok = served.tokenizer;
  const runDir = await findRunDir(opts.checkpoint, served.dir);
  if (runDir === null) throw new Error(`no data/meta.json next to ${path.resolve(opts.checkpoint)}: eval needs the run directory (the train --out folder), which holds the training tokens`);
  const meta = JSON.parse(await fs.readFile(path.join(runDir, 'data', 'meta.json'), 'utf8')) as DatasetMeta;
  const trainTokens = tokensFromBytes(await fs.readFile(path.join(runDir, 'data', 'train.bin')));

  progress('files', 0);
  const loaded = await loadDocuments(opts, runDir, meta);
  const docs = capBytes(loaded.docs, opts.maxBytes ?? 1_000_000);
  if (docs.length === 0) throw new Error(`no files to evaluate in ${loaded.folder}`);
  const decoder = new TextDecoder('utf-8');
  const texts = docs.map((d) => decoder.decode(d.bytes));
  const seqs = docs.map((d) => [tok.eotId, ...tok.encodeBytes(d.bytes), tok.eotId]);
  const bytes = docs.reduce((s, d) => s + d.bytes.length, 0);
  const tokens = seqs.reduce((s, q) => s + q.length - 1, 0);
  // Two halves of the files, by a hash of the path (stable across runs and seeds).
  const fold = docs.map((d) => hashString(d.path) & 1);

  // --- The baseline: KN on train.bin, its cache tuned on train.bin's last files first.
  progress('n-gram', 0);
  const tn0 = performance.now();
  const { kn, cache } = trainNgram(trainTokens, tok.vocabSize, tok.eotId, order);
  const knSeconds = (performance.now() - tn0) / 1000;
  const corpus = new CopyCorpus(trainTokens, tok.eotId);
  progress('n-gram', 1);

  // --- Per-token scores of the three; the served weights fitted per half; the losses.
  const gptNll = gptTokenLosses(served.model, seqs, (f) => progress('loss', f));
  const knScores = ngramTokenScores(new NgramSession(kn, cache), seqs);
  const copyScores = copyTokenScores(new CopySession(corpus, tok.eotId), seqs);
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
  const folds = [0, 1].map((f) => {
    const other = crossFitted ? scoresOf((d) => fold[d] !== f) : scoresOf(() => true);
    // The ablation without the GPT: the copy model's weights against the n-gram model alone.
    return { ...fitWeights(other, kn.order), copyOverNgram: fitCopyWeights(other.pCopy, other.pNgram, other.copyBucket, COPY_BUCKETS) };
  });
  const langs = new Map<string, { files: number; bytes: number; gpt: number; kn: number; mix: number; mix2: number }>();
  let gptSum = 0, knSum = 0, mixSum = 0, mix2Sum = 0;
  docs.forEach((d, i) => {
    const g = gptNll[i]!, k = knScores[i]!, c = copyScores[i]!;
    const { mixture, copy } = folds[fold[i]!]!;
    let gs = 0, ks = 0, ms = 0, m2 = 0;
    for (let t = 0; t < g.length; t++) {
      const w = mixture.weights[k.bucket[t]!]!;
      const mu = copy.weights[c.bucket[t]!]!;
      const pm = w * Math.exp(-g[t]!) + (1 - w) * Math.exp(-k.nll[t]!);
      gs += g[t]!;
      ks += k.nll[t]!;
      m2 -= Math.log(pm);
      ms -= Math.log(mu * c.p[t]! + (1 - mu) * pm);
    }
    mix2Sum += m2;
    gptSum += gs; knSum += ks; mixSum += ms;
    const lang = language(d.path);
    const row = langs.get(lang) ?? { files: 0, bytes: 0, gpt: 0, kn: 0, mix: 0, mix2: 0 };
    row.files++; row.bytes += d.bytes.length; row.gpt += gs; row.kn += ks; row.mix += ms; row.mix2 += m2;
    langs.set(lang, row);
  });

  // --- Next-line completion through the editor's engine, for each model.
  const settings = { ...DEFAULT_COMPLETION_SETTINGS, mode: 'line' as const, temperature: 0, topP: 1, maxTokens: MAX_NEW_TOKENS, minMeanLogProb: -Infinity };
  const engineOpts = { useCache: false, reuseSuggestions: false, ...(opts.beamWidth !== undefined ? { beamWidth: opts.beamWidth } : {}) };
  const gptEngine = new CompletionEngine(() => served, settings, engineOpts);
  const knModel = ngramCompletionModel(served, new NgramSession(kn, cache));
  const knEngine = new CompletionEngine(() => knModel, settings, engineOpts);
  const mixEngines = folds.map((f) => {
    const model: CompletionModel = { ...served, ngram: { session: new NgramSession(kn, cache), mixture: f.mixture }, copy: { session: new CopySession(corpus, tok.eotId), mixture: f.copy } };
    return new CompletionEngine(() => model, settings, engineOpts);
  });
  // The ablations: the n-gram model + copy (no GPT), and GPT + n-gram without the copy model.
  const ngramCopyEngines = folds.map((f) => {
    const model: CompletionModel = { ...knModel, session: new NgramSession(kn, cache), copy: { session: new CopySession(corpus, tok.eotId), mixture: f.copyOverNgram } };
    return new CompletionEngine(() => model, settings, engineOpts);
  });
  const mix2Engines = folds.map((f) => {
    const model: CompletionModel = { ...served, ngram: { session: new NgramSession(kn, cache), mixture: f.mixture } };
    return new CompletionEngine(() => model, settings, engineOpts);
  });
  // Prefix-only requests must not see the suffix: a FIM model gets one only in the FIM variant.
  const cuts = chooseCuts(texts, cutsWanted, seed);
  const gptLines = new LineScores(), knLines = new LineScores(), mixLines = new LineScores(), mix2Lines = new LineScores(), kcLines = new LineScores(), fimLines = new LineScores();
  const examples: EvalExample[] = [];
  for (let c = 0; c < cuts.length; c++) {
    const cut = cuts[c]!;
    const text = texts[cut.doc]!;
    const file = docs[cut.doc]!.path;
    const lang = language(file);
    const prefix = text.slice(0, cut.offset);
    const truth = text.slice(cut.offset, cut.lineEnd);
    const req = { uri: `eval:${file}`, text: prefix, offset: prefix.length };
    const mixEngine = mixEngines[fold[cut.doc]!]!;
    const gpt = (await gptEngine.complete(req, NOOP)).text;
    const baseline = (await knEngine.complete(req, NOOP)).text;
    const mixture = (await mixEngine.complete(req, NOOP)).text;
    mix2Lines.add((await mix2Engines[fold[cut.doc]!]!.complete(req, NOOP)).text, truth, lang);
    kcLines.add((await ngramCopyEngines[fold[cut.doc]!]!.complete(req, NOOP)).text, truth, lang);
    gptLines.add(gpt, truth, lang);
    knLines.add(baseline, truth, lang);
    mixLines.add(mixture, truth, lang);
    let mixFim: string | undefined;
    if (served.fim) {
      // The rest of the file after the line is the suffix (the line's own rest is the answer).
      mixFim = (await mixEngine.complete({ uri: req.uri, text: prefix + text.slice(cut.lineEnd), offset: prefix.length }, NOOP)).text;
      fimLines.add(mixFim, truth, lang);
    }
    if (examples.length < 3) {
      const lineStart = prefix.lastIndexOf('\n') + 1;
      const prevStart = prefix.lastIndexOf('\n', Math.max(0, lineStart - 2)) + 1;
      examples.push({ file, line: cut.line, before: prefix.slice(prevStart), truth, model: mixture, ...(mixFim !== undefined ? { model_fim: mixFim } : {}), gpt, baseline });
    }
    progress('next-line', (c + 1) / cuts.length);
  }

  const byLanguage = (which: 'gpt' | 'kn' | 'mix' | 'mix2', scores: LineScores): Record<string, LanguageRow> => {
    const out: Record<string, LanguageRow> = {};
    for (const [lang, row] of [...langs].sort((a, b) => b[1].bytes - a[1].bytes)) {
      const g = scores.groups.get(lang);
      out[lang] = {
        files: row.files, bytes: row.bytes, bits_per_byte: bitsPerByte(row[which], row.bytes),
        next_line: g === undefined ? { exact_match: NaN, edit_similarity: NaN, n: 0 } : { exact_match: g.exact / g.n, edit_similarity: g.similarity / g.n, n: g.n },
      };
    }
    return out;
  };
  const report: EvalReport = {
    format: 'workspace-lm/eval',
    model: 'gpt+ngram',
    checkpoint: served.dir, step: served.step, source: loaded.source, folder: loaded.folder,
    files: docs.length, bytes, tokens, cuts: cuts.length, seed,
    val_loss: mixSum / tokens, bits_per_byte: bitsPerByte(mixSum, bytes), next_line: mixLines.summary(),
    ...(served.fim ? { next_line_fim: fimLines.summary() } : {}),
    by_language: byLanguage('mix', mixLines),
    gpt: { val_loss: gptSum / tokens, bits_per_byte: bitsPerByte(gptSum, bytes), next_line: gptLines.summary(), by_language: byLanguage('gpt', gptLines) },
    baseline: {
      model: `interpolated modified Kneser-Ney ${order}-gram + file cache`, order, cache, train_tokens: kn.stats.tokens, train_seconds: knSeconds,
      val_loss: knSum / tokens, bits_per_byte: bitsPerByte(knSum, bytes), next_line: knLines.summary(), by_language: byLanguage('kn', knLines),
    },
    mixture: { buckets: bucketNames(kn.order), folds: folds.map((f) => f.mixture), cross_fitted: crossFitted },
    copy: { buckets: copyBucketNames(), folds: folds.map((f) => f.copy) },
    ngram_copy: { next_line: kcLines.summary() },
    without_copy: { val_loss: mix2Sum / tokens, bits_per_byte: bitsPerByte(mix2Sum, bytes), next_line: mix2Lines.summary(), by_language: byLanguage('mix2', mix2Lines) },
    examples,
    seconds: (performance.now() - t0) / 1000,
    evaluated_at: new Date().toISOString(),
  };
  return report;
}

/** Where `eval` leaves its report: next to trainer_state.json of the run (or checkpoint) evaluated. */
export async function evalReportPath(checkpointArg: string): Promise<string> {
  const dir = path.resolve(checkpointArg);
  return path.join(dir, 'eval.json');
}

export async function writeEvalReport(checkpointArg: string, report: EvalReport): Promise<string> {
  const file = await evalReportPath(checkpointArg);
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, JSON.stringify(report, null, 1) + '\n');
  await fs.rename(tmp, file);
  return file;
}

/** The last eval written for a run or checkpoint directory, or null. */
export async function readEvalReport(dir: string): Promise<EvalReport | null> {
  try {
    const json = JSON.parse(await fs.readFile(path.join(path.resolve(dir), 'eval.json'), 'utf8')) as EvalReport;
    return json.format === 'workspace-lm/eval' ? json : null;
  } catch {
    return null;
  }
}

/** The headline of an eval, for `info` and the sidebar: the model against the n-gram baseline. */
export interface EvalSummary {
  step: number | null;
  evaluated_at: string;
  source: 'held-out' | 'folder';
  files: number;
  cuts: number;
  bits_per_byte: number;
  exact_match: number;
  edit_similarity: number;
  exact_match_fim: number | null;
  /** The GPT alone (null in reports from before the served mixture). */
  gpt_exact_match: number | null;
  baseline: { bits_per_byte: number; exact_match: number; edit_similarity: number };
}

export function summarizeEval(r: EvalReport): EvalSummary {
  return {
    step: r.step, evaluated_at: r.evaluated_at, source: r.source, files: r.files, cuts: r.cuts,
    bits_per_byte: r.bits_per_byte, exact_match: r.next_line.exact_match, edit_similarity: r.next_line.edit_similarity,
    exact_match_fim: r.next_line_fim?.exact_match ?? null,
    gpt_exact_match: r.gpt?.next_line.exact_match ?? null,
    baseline: { bits_per_byte: r.baseline.bits_per_byte, exact_match: r.baseline.next_line.exact_match, edit_similarity: r.baseline.next_line.edit_similarity },
  };
}

/** One line for terminals: "bpb 1.021 vs n-gram 1.175 · next-line EM 18.3% vs 15.0% · …". */
export function formatEvalSummary(e: EvalSummary, currentStep: number | null): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const stale = currentStep !== null && e.step !== null && e.step !== currentStep ? ` — of step ${e.step}, not the current checkpoint` : '';
  return `bits/byte ${e.bits_per_byte.toFixed(3)} vs n-gram ${e.baseline.bits_per_byte.toFixed(3)}; next-line EM ${pct(e.exact_match)} vs ${pct(e.baseline.exact_match)}`
    + `${e.exact_match_fim !== null ? ` (with FIM ${pct(e.exact_match_fim)})` : ''}${e.gpt_exact_match !== null ? ` (GPT alone ${pct(e.gpt_exact_match)})` : ''}, ES ${(100 * e.edit_similarity).toFixed(1)} vs ${(100 * e.baseline.edit_similarity).toFixed(1)}`
    + ` (${e.cuts} cuts, ${e.files} ${e.source === 'held-out' ? 'held-out ' : ''}files, ${e.evaluated_at.slice(0, 16).replace('T', ' ')})${stale}`;
}
