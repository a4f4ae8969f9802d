// `workspace-lm eval`: the quality report of a run (see eval/evaluate.ts) as a table on the
// terminal or one JSON object with --json; also left in <checkpoint>/eval.json for `info`.

import { parseArgs } from 'node:util';
import { runEvaluation } from '../eval/evaluate';
import { EvalReport, LineSummary, writeEvalReport } from '../run/evalReport';
import { UsageError } from './commands';
import { resolveCheckpointArg, runsHome } from '../run/layout';
import { formatBytes, formatDuration } from './progressBar';

export const EVAL_USAGE = `  workspace-lm eval --checkpoint DIR [<folder>] [--json] [--cuts N] [--seed S] [--order N]
                     [--all-files] [--max-bytes N] [--allow-home]
                     (held-out loss, bits per byte and next-line exact match / edit similarity of
                     the model as served (the GPT mixed with the n-gram and copy models), of the GPT
                     alone, of the counts alone (n-gram + copy) and of a Kneser-Ney n-gram baseline;
                     <folder> is the folder the run trained on (default: the one it recorded) —
                     or another folder, whose files are then all evaluated)
`;

function intArg(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} expects an integer >= ${min}, got "${v}"`);
  return n;
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '-');
const es = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(1) : '-');
const num = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd()).join('\n');
}

/** One line of text for display: control characters visible, long text cut. */
function show(s: string, max = 70): string {
  const t = JSON.stringify(s).slice(1, -1);
  return t.length > max ? t.slice(0, max - 1) + '…' : t;
}

export function formatEvalReport(r: EvalReport): string {
  const nl = (l: LineSummary | undefined): [string, string] => (l === undefined ? ['-', '-'] : [pct(l.exact_match), es(l.edit_similarity)]);
  const out: string[] = [];
  out.push(`checkpoint  ${r.checkpoint}${r.step !== null ? ` (step ${r.step})` : ''}`);
  out.push(`evaluated   ${r.source === 'held-out' ? 'the run\'s held-out files' : 'every file'} of ${r.folder}: ${r.files} files, ${formatBytes(r.bytes)}, ${r.tokens.toLocaleString('en-US')} tokens; ${r.cuts} next-line cuts (seed ${r.seed})`);
  out.push('');
  out.push(table([
    ['model', 'loss', 'bits/byte', 'EM', 'ES', 'FIM EM', 'FIM ES'],
    ['Workspace LM (GPT + n-gram + copy, as served)', num(r.val_loss), num(r.bits_per_byte), ...nl(r.next_line), ...nl(r.next_line_fim)],
    ['  without the copy model (GPT + n-gram)', num(r.without_copy.val_loss), num(r.without_copy.bits_per_byte), ...nl(r.without_copy.next_line), '-', '-'],
    ['  without the GPT (n-gram + copy: the counts)', num(r.counts.val_loss), num(r.counts.bits_per_byte), ...nl(r.counts.next_line), '-', '-'],
    ['GPT alone (this run)', num(r.gpt.val_loss), num(r.gpt.bits_per_byte), ...nl(r.gpt.next_line), '-', '-'],
    [`n-gram baseline (KN ${r.baseline.order}-gram + cache)`, num(r.baseline.val_loss), num(r.baseline.bits_per_byte), ...nl(r.baseline.next_line), '-', '-'],
  ]));
  const ratio = r.next_line.exact_match / r.baseline.next_line.exact_match;
  const gptRatio = r.gpt.next_line.exact_match / r.baseline.next_line.exact_match;
  const x = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) + '×' : '-');
  const gain = (r.next_line.exact_match - r.counts.next_line.exact_match) * 100;
  const bpbGain = 1 - r.bits_per_byte / r.counts.bits_per_byte;
  out.push(`what the GPT adds to the counts: ${Number.isFinite(gain) ? (gain >= 0 ? '+' : '') + gain.toFixed(1) : '-'} EM points, ${Number.isFinite(bpbGain) ? (100 * bpbGain).toFixed(1) : '-'}% fewer bits per byte`);
  out.push(`EM ratio to the baseline: served ${x(ratio)}, GPT alone ${x(gptRatio)} (loss: nats per token; EM: exact match; ES: edit similarity ×100, CodeXGLUE-style)`);
  if (!r.mixture.cross_fitted) out.push('note: all files fell in one half, so the served model\'s weights were fitted on the files they score (not cross-fitted): its numbers are optimistic');
  out.push(`GPT's share λ by n-gram bucket (fitted on each half of the files, used on the other): ${r.mixture.folds.map((f) => f.weights.map((w) => w.toFixed(2)).join(' ')).join('; ')}`);
  out.push(`copy model's share μ by match length (${r.copy.buckets.join(', ')}): ${r.copy.folds.map((f) => f.weights.map((w) => w.toFixed(2)).join(' ')).join('; ')}`);
  out.push('');
  const langRows = [['language', 'files', 'bytes', 'bpb served', 'bpb n-gram', 'cuts', 'EM served', 'EM n-gram', 'ES served', 'ES n-gram']];
  for (const [lang, g] of Object.entries(r.by_language)) {
    const b = r.baseline.by_language[lang]!;
    langRows.push([lang, String(g.files), formatBytes(g.bytes), num(g.bits_per_byte), num(b.bits_per_byte), String(g.next_line.n), pct(g.next_line.exact_match), pct(b.next_line.exact_match), es(g.next_line.edit_similarity), es(b.next_line.edit_similarity)]);
  }
  out.push(table(langRows));
  out.push('');
  for (const [i, ex] of r.examples.entries()) {
    out.push(`example ${i + 1}: ${ex.file}:${ex.line}`);
    out.push(`  before    …${show(ex.before)}`);
    out.push(`  truth     ${show(ex.truth)}`);
    out.push(`  served    ${show(ex.model)}`);
    if (ex.model_fim !== undefined) out.push(`  with FIM  ${show(ex.model_fim)}`);
    out.push(`  GPT       ${show(ex.gpt)}`);
    if (ex.counts !== undefined) out.push(`  counts    ${show(ex.counts)}`);
    out.push(`  n-gram    ${show(ex.baseline)}`);
  }
  out.push('');
  out.push(`n-gram: ${r.baseline.model}, trained on ${r.baseline.train_tokens.toLocaleString('en-US')} tokens in ${r.baseline.train_seconds.toFixed(1)} s; cache weight ${r.baseline.cache.weight}, β ${r.baseline.cache.concentration}. Took ${formatDuration(r.seconds)}.`);
  return out.join('\n') + '\n';
}

export async function evalCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        checkpoint: { type: 'string' }, json: { type: 'boolean' }, cuts: { type: 'string' }, seed: { type: 'string' }, order: { type: 'string' },
        beam: { type: 'string' }, 'all-files': { type: 'boolean' }, 'allow-home': { type: 'boolean' }, 'max-bytes': { type: 'string' }, verbose: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.checkpoint === undefined) throw new UsageError(`eval needs --checkpoint DIR (the project folder, or its run folder: train's --out, by default in ${runsHome()})`);
  if (positionals.length > 1) throw new UsageError('eval takes at most one folder');
  const checkpoint = await resolveCheckpointArg(values.checkpoint);
  const order = intArg(values.order, 'order', 2);
  if (order !== undefined && order > 6) throw new UsageError('--order expects 2..6');
  const json = values.json === true;
  const tty = process.stderr.isTTY === true && !json;
  let lastDraw = 0;
  const report = await runEvaluation({
    checkpoint,
    ...(values['allow-home'] === true ? { allowHomeOrRoot: true } : {}),
    ...(positionals[0] !== undefined ? { folder: positionals[0] } : {}),
    allFiles: values['all-files'] === true,
    cuts: intArg(values.cuts, 'cuts', 1) ?? 300,
    seed: intArg(values.seed, 'seed', 0) ?? 0,
    ...(order !== undefined ? { ngramOrder: order } : {}),
    ...(values['max-bytes'] !== undefined ? { maxBytes: intArg(values['max-bytes'], 'max-bytes', 1)! } : {}),
    ...(values.beam !== undefined ? { beamWidth: intArg(values.beam, 'beam', 1)! } : {}),
    onProgress: (phase, f) => {
      if (!tty) return;
      const now = Date.now();
      if (f < 1 && now - lastDraw < 100) return;
      lastDraw = now;
      process.stderr.write(`\r\x1b[2Keval: ${phase} ${Math.round(100 * f)}%`);
    },
  });
  if (tty) process.stderr.write('\r\x1b[2K');
  await writeEvalReport(checkpoint, report);
  process.stdout.write(json ? JSON.stringify(report) + '\n' : formatEvalReport(report));
  return 0;
}
