// The CLI's commands over the same engine the editor uses. Each parses its own flags (node's
// parseArgs, strict: unknown flags are errors) and throws UsageError/Error with a message a user
// can act on; main.ts turns those into one line on stderr and an exit code.

import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { DEFAULT_PRESET, DEFAULT_TIME_BUDGET_MINUTES, isPresetName, parameterCount, PRESETS, TrainConfig } from '../ml/config';
import { contextWindow, sampleToken } from '../ml/sample';
import { loadServingModel } from '../completion/servingModel';
import { createConnection, ProposedFeatures, StreamMessageReader, StreamMessageWriter } from 'vscode-languageserver/node';
import { startLanguageServer } from '../server/languageServer';
import { Rng } from '../ml/rng';
import { runTraining } from '../training/trainer';
import { loadCheckpoint } from '../run/checkpoint';
import { formatEvalSummary, readEvalReport, summarizeEval } from '../eval/evaluate';
import type { TrainEvent } from '../shared/trainEvents';
import { formatDuration, ProgressRenderer } from './progressBar';

export class UsageError extends Error {}

export const USAGE = `workspace-lm — train a small GPT on a code folder and complete code from it, on your CPU.

Usage:
  workspace-lm train <folder> [--out DIR] [--preset tiny|small|seed] [--epochs N] [--max-steps N]
                     [--minutes M] [--threads N] [--fanout N] [--checkpoint-every N] [--seed N]
                     [--memory-cap MB] [--resume | --retrain] [--json]
  workspace-lm complete --checkpoint DIR [--max-tokens N] [--temperature T] [--top-p P] [--seed N]
                     (reads the prompt on stdin, prints the continuation)
  workspace-lm info --checkpoint DIR [--json]
  workspace-lm eval --checkpoint DIR [<folder>] [--json] [--cuts N] [--seed S] [--order N]
                     [--all-files] [--max-bytes N]
                     (held-out loss, bits per byte and next-line exact match / edit similarity of the
                     model and of a Kneser-Ney n-gram baseline; <folder>: the folder the run trained
                     on, or another folder, whose files are then all evaluated; writes DIR/eval.json)
  workspace-lm serve --stdio [--checkpoint DIR]
                     (LSP server with inline completions; without --checkpoint it serves the
                     newest checkpoint of <workspace root>/.workspace-lm)
  workspace-lm export <folder|run-dir> --to DIR [--no-weights] [--json]
                     (a PyTorch training bundle: data, tokenizer, config, weights, train_torch.py
                     for one machine, several GPUs or nodes; see DIR/README.md)
  workspace-lm import DIR [--out RUN_DIR] [--json]
                     (checks a model folder, e.g. train_torch.py's --out, and makes it the served
                     model of RUN_DIR, default ./.workspace-lm)

Options:
  --out DIR      where the run lives (default: <folder>/.workspace-lm)
  --preset       ${Object.entries(PRESETS).map(([k, v]) => `${k} (${v.description})`).join('; ')} (default ${DEFAULT_PRESET})
  --minutes M    stop after M minutes, the learning rate annealed by then (default ${DEFAULT_TIME_BUDGET_MINUTES}; 0 = no limit)
  --threads N    worker threads (default: all cores; they run at low priority)
  --fanout N     leaders around the root of the gradient reduction tree (default 12)
  --memory-cap MB  memory budget (default 1536): a larger workspace trains on a sample of its files
  --resume       continue the run in --out from its newest checkpoint
  --retrain      after the files changed: a new run from the previous model's weights
                 (only changed files are re-read and re-encoded)
  --json         one JSON object per line instead of a progress bar
  --verbose      show stack traces on errors
`;

function intFlag(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} expects an integer >= ${min}, got "${v}"`);
  return n;
}

function numFlag(v: string | undefined, name: string, min: number, max = Infinity): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} expects a number in [${min}, ${max}], got "${v}"`);
  return n;
}

/** node's parseArgs, strict, with --verbose everywhere; bad flags become a UsageError. */
export function parse<T extends Record<string, { type: 'string' | 'boolean' }>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options: { ...options, verbose: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export async function trainCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    out: { type: 'string' }, preset: { type: 'string' }, epochs: { type: 'string' }, 'max-steps': { type: 'string' },
    minutes: { type: 'string' }, threads: { type: 'string' }, 'checkpoint-every': { type: 'string' }, seed: { type: 'string' },
    fanout: { type: 'string' }, 'memory-cap': { type: 'string' }, resume: { type: 'boolean' }, retrain: { type: 'boolean' }, json: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new UsageError('train needs exactly one folder: workspace-lm train <folder>');
  const folder = path.resolve(positionals[0]!);
  const preset = values.preset ?? DEFAULT_PRESET;
  if (!isPresetName(preset)) throw new UsageError(`unknown preset "${preset}": use one of ${Object.keys(PRESETS).join(', ')}`);
  const threads = intFlag(values.threads, 'threads', 1);
  const fanout = intFlag(values.fanout, 'fanout', 1);
  const memoryCapMb = intFlag(values['memory-cap'], 'memory-cap', 256);
  const train: Partial<TrainConfig> = {
    epochs: numFlag(values.epochs, 'epochs', 0.001),
    maxSteps: intFlag(values['max-steps'], 'max-steps', 1),
    // 0 = no time limit (the epochs decide).
    maxMinutes: numFlag(values.minutes, 'minutes', 0) ?? DEFAULT_TIME_BUDGET_MINUTES,
    checkpointEvery: intFlag(values['checkpoint-every'], 'checkpoint-every', 1),
    seed: intFlag(values.seed, 'seed', 0),
  };
  const outDir = path.resolve(values.out ?? path.join(folder, '.workspace-lm'));
  const json = values.json === true;
  const renderer = json ? null : new ProgressRenderer(process.stderr);
  const emit = (e: TrainEvent): void => {
    if (json) process.stdout.write(JSON.stringify(e) + '\n');
    else renderer!.handle(e);
  };
  // First Ctrl-C: finish the current step, save a checkpoint, exit. Second: exit now.
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    if (!json) process.stderr.write('\nstopping after this step (Ctrl-C again to quit without saving)…\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (values.resume === true && values.retrain === true) throw new UsageError('--resume and --retrain exclude each other');
    await runTraining({ folders: [folder], outDir, preset, train, threads, fanout, resume: values.resume === true, retrain: values.retrain === true, signal: controller.signal, ...(memoryCapMb !== undefined ? { memoryCapMb } : {}) }, emit);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return controller.signal.aborted ? 130 : 0;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('type the prompt, then Ctrl-D\n');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function completeCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    checkpoint: { type: 'string' }, 'max-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-p': { type: 'string' }, seed: { type: 'string' },
  });
  if (values.checkpoint === undefined) throw new UsageError('complete needs --checkpoint DIR (a run folder or one of its checkpoints)');
  const maxTokens = intFlag(values['max-tokens'], 'max-tokens', 1) ?? 64;
  const temperature = numFlag(values.temperature, 'temperature', 0, 10) ?? 0;
  const topP = numFlag(values['top-p'], 'top-p', 0.01, 1) ?? 1;
  const rng = new Rng(intFlag(values.seed, 'seed', 0) ?? 0);
  const served = await loadServingModel(values.checkpoint);
  for (const r of served.rejected) process.stderr.write(`warning: skipped damaged checkpoint: ${r.reason}\n`);
  const prompt = await readStdin();
  const tok = served.tokenizer;
  const ids = Array.from(tok.encodeBytes(new TextEncoder().encode(prompt)));
  // An empty prompt starts a new file: the end-of-text token is what precedes every file.
  const P = served.model.cfg.contextLength;
  const context = contextWindow(ids.length === 0 ? [tok.eotId] : ids, P, Math.min(maxTokens, Math.floor(P / 2)));
  const session = served.session;
  let logits = session.prime(context);
  // Tokens are decoded as bytes and written when they form complete UTF-8 characters.
  const decoder = new TextDecoder('utf-8');
  const banned = new Set<number>([tok.specialId('<|fim_prefix|>'), tok.specialId('<|fim_middle|>'), tok.specialId('<|fim_suffix|>')]);
  for (let i = 0; i < maxTokens; i++) {
    const { id } = sampleToken(logits, { temperature, topP }, rng, banned);
    if (id === tok.eotId) break;
    process.stdout.write(decoder.decode(tok.tokenBytes(id), { stream: true }));
    logits = session.append(id);
  }
  process.stdout.write(decoder.decode() + '\n');
  return 0;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { stdio: { type: 'boolean' }, checkpoint: { type: 'string' }, 'poll-ms': { type: 'string' } });
  if (values.stdio !== true) throw new UsageError('serve speaks LSP over stdio: run `workspace-lm serve --stdio [--checkpoint DIR]`');
  // stdout is the LSP channel from here on: route stray logging to stderr.
  console.log = console.error;
  const connection = createConnection(ProposedFeatures.all, new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
  const pollMs = intFlag(values['poll-ms'], 'poll-ms', 50);
  startLanguageServer(connection, {
    ...(values.checkpoint !== undefined ? { modelDir: path.resolve(values.checkpoint) } : {}),
    ...(pollMs !== undefined ? { pollMs } : {}),
    log: (m) => process.stderr.write(`workspace-lm: ${m}\n`),
  });
  // Runs until the client sends exit (vscode-languageserver then ends the process) or closes stdin.
  await new Promise<void>((resolve) => process.stdin.on('close', resolve));
  return 0;
}

export async function infoCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { checkpoint: { type: 'string' }, json: { type: 'boolean' } });
  if (values.checkpoint === undefined) throw new UsageError('info needs --checkpoint DIR');
  const ck = await loadCheckpoint(values.checkpoint);
  const cfg = ck.model.cfg;
  const s = ck.state;
  const info = {
    checkpoint: ck.dir,
    params: parameterCount(cfg),
    vocab_size: cfg.vocabSize, context: cfg.contextLength, n_embd: cfg.dModel, n_layer: cfg.nLayer, n_head: cfg.nHead,
    step: s?.step ?? null, total_steps: s?.totalSteps ?? null, tokens_seen: s?.tokensSeen ?? null,
    train_loss: s?.lastLoss ?? null, val_loss: s?.lastValLoss ?? null, elapsed_s: s?.elapsedSec ?? null, saved_at: s?.savedAt ?? null,
    rejected: ck.rejected,
  };
  // The latest `workspace-lm eval` of this run, if any (eval.json next to trainer_state.json).
  const evalReport = await readEvalReport(values.checkpoint);
  const lastEval = evalReport === null ? null : summarizeEval(evalReport);
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ ...info, eval: lastEval }) + '\n');
    return 0;
  }
  const lines = [
    `checkpoint  ${info.checkpoint}`,
    `model       GPT-2, ${(info.params / 1e6).toFixed(2)}M params: ${cfg.nLayer} layers, ${cfg.nHead} heads, d ${cfg.dModel}, context ${cfg.contextLength}, vocab ${cfg.vocabSize}`,
  ];
  if (s !== null) {
    lines.push(
      `training    step ${s.step}/${s.totalSteps}, ${s.tokensSeen.toLocaleString('en-US')} tokens seen in ${formatDuration(s.elapsedSec)}`,
      `loss        train ${s.lastLoss?.toFixed(4) ?? '-'}, val ${s.lastValLoss?.toFixed(4) ?? '-'}`,
      `saved       ${s.savedAt}`,
    );
  } else {
    lines.push('training    no trainer state (imported weights)');
  }
  lines.push(`eval        ${lastEval === null ? 'none yet (workspace-lm eval --checkpoint DIR <folder>)' : formatEvalSummary(lastEval, s?.step ?? null)}`);
  for (const r of ck.rejected) lines.push(`warning     skipped damaged checkpoint: ${r.reason}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
