// eval.json: the report of `workspace-lm eval` (eval/evaluate.ts), its schema declared once, and
// its headline for `info`, the language server's status and the sidebar.

import * as path from 'node:path';
import type { CacheParams } from '../ml/ngram';
import type { MixtureWeights } from '../ml/mixture';
import { writeAtomic } from './atomicFile';
import { EVAL_FILE } from './layout';
import { jsonErrorText, readRegularFile, READ_LIMITS } from './safeRead';

export const EVAL_REPORT_FORMAT = 'workspace-lm/eval';

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
  /** The counts alone (n-gram + copy, no GPT). */
  counts?: string;
  baseline: string;
}

/**
 * Top-level numbers are the model as the editor serves it: the GPT mixed with the n-gram
 * companion (model: 'gpt+ngram'), or the GPT alone when the run has no training data to build
 * one from ('gpt'). `gpt` is the network alone, `baseline` the n-gram model alone.
 */
export interface EvalReport extends ModelEval {
  model: 'gpt+ngram' | 'gpt';
  format: typeof EVAL_REPORT_FORMAT;
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
  /** The copy model's share μ per match-length bucket, likewise; and μ' against the n-gram model alone (the counts mode). */
  copy: { buckets: string[]; folds: MixtureWeights[]; over_ngram_folds: MixtureWeights[] };
  /** The served model without its copy model (GPT + n-gram only): what the copy model adds. */
  without_copy: ModelEval;
  /** The counts: the n-gram model + the copy model, without the GPT (the `counts` mode): what the GPT adds. */
  counts: ModelEval;
  examples: EvalExample[];
  seconds: number;
  evaluated_at: string;
}

/** Where `eval` leaves its report: next to trainer_state.json of the run (or checkpoint) evaluated. */
export async function evalReportPath(checkpointArg: string): Promise<string> {
  const dir = path.resolve(checkpointArg);
  return path.join(dir, EVAL_FILE);
}

export async function writeEvalReport(checkpointArg: string, report: EvalReport): Promise<string> {
  const file = await evalReportPath(checkpointArg);
  await writeAtomic(file, JSON.stringify(report, null, 1) + '\n');
  return file;
}

/** The last eval written for a run or checkpoint directory; null when there is none. A damaged or foreign eval.json is an error naming the file. */
export async function readEvalReport(dir: string): Promise<EvalReport | null> {
  const file = path.join(path.resolve(dir), EVAL_FILE);
  let text: string;
  try {
    text = (await readRegularFile(file, READ_LIMITS.evalReport, { allowSymlinkWithin: path.dirname(file) })).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error((e as Error).message.startsWith(file) ? (e as Error).message : `cannot read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is damaged (${jsonErrorText(e)}): run \`workspace-lm eval\` again`);
  }
  if (typeof json !== 'object' || json === null || (json as { format?: unknown }).format !== EVAL_REPORT_FORMAT) throw new Error(`${file} is not a workspace-lm eval report`);
  return json as EvalReport;
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
  /** The counts alone: n-gram + copy, no GPT (null in reports from before it was measured). */
  counts: { bits_per_byte: number; exact_match: number } | null;
  baseline: { bits_per_byte: number; exact_match: number; edit_similarity: number };
}

export function summarizeEval(r: EvalReport): EvalSummary {
  return {
    step: r.step, evaluated_at: r.evaluated_at, source: r.source, files: r.files, cuts: r.cuts,
    bits_per_byte: r.bits_per_byte, exact_match: r.next_line.exact_match, edit_similarity: r.next_line.edit_similarity,
    exact_match_fim: r.next_line_fim?.exact_match ?? null,
    gpt_exact_match: r.gpt?.next_line.exact_match ?? null,
    counts: r.counts !== undefined ? { bits_per_byte: r.counts.bits_per_byte, exact_match: r.counts.next_line.exact_match } : null,
    baseline: { bits_per_byte: r.baseline.bits_per_byte, exact_match: r.baseline.next_line.exact_match, edit_similarity: r.baseline.next_line.edit_similarity },
  };
}

/** One line for terminals: "bpb 1.021 vs n-gram 1.175 · next-line EM 18.3% vs 15.0% · …". */
export function formatEvalSummary(e: EvalSummary, currentStep: number | null): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const stale = currentStep !== null && e.step !== null && e.step !== currentStep ? ` — of step ${e.step}, not the current checkpoint` : '';
  return `bits/byte ${e.bits_per_byte.toFixed(3)} vs n-gram ${e.baseline.bits_per_byte.toFixed(3)}; next-line EM ${pct(e.exact_match)} vs ${pct(e.baseline.exact_match)}`
    + `${e.exact_match_fim !== null ? ` (with FIM ${pct(e.exact_match_fim)})` : ''}${e.gpt_exact_match !== null ? ` (GPT alone ${pct(e.gpt_exact_match)})` : ''}${e.counts !== null ? ` (counts alone ${pct(e.counts.exact_match)})` : ''}, ES ${(100 * e.edit_similarity).toFixed(1)} vs ${(100 * e.baseline.edit_similarity).toFixed(1)}`
    + ` (${e.cuts} cuts, ${e.files} ${e.source === 'held-out' ? 'held-out ' : ''}files, ${e.evaluated_at.slice(0, 16).replace('T', ' ')})${stale}`;
}
