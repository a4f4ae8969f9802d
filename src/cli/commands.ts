// The CLI's commands over the same engine the editor uses. Each parses its own flags (node's
// parseArgs, strict: unknown flags are errors) and throws UsageError/Error with a message a user
// can act on; main.ts turns those into one line on stderr and an exit code.

import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { CompletionSettings, DEFAULT_COMPLETION_SETTINGS, DEFAULT_FANOUT, DEFAULT_MEMORY_CAP_MB, DEFAULT_PRESET, DEFAULT_TIME_BUDGET_MINUTES, isPresetName, PRESETS, TrainConfig } from '../ml/config';
import { parameterCount } from '../ml/paramLayout';
import { loadServingModel } from '../completion/servingModel';
import { CompletionEngine } from '../completion/engine';
import { isServedModelMode, SERVED_MODEL_MODES } from '../ml/servedModel';
import { pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import { distPath } from '../runtime/distFiles';
import { runTraining } from '../training/trainer';
import { loadCheckpoint } from '../run/checkpoint';
import { formatEvalSummary, readEvalReport, summarizeEval } from '../run/evalReport';
import type { TrainEvent } from '../shared/trainEvents';
import { defaultRunDir, legacyRunNotice, resolveCheckpointArg, runsHome } from '../run/layout';
import { formatDuration, ProgressRenderer } from './progressBar';

export class UsageError extends Error {}

export const USAGE = `workspace-lm — train a small GPT on a code folder and complete code from it, on your CPU.

Usage:
  workspace-lm train <folder> [--out DIR] [--preset tiny|small|seed] [--epochs N] [--max-steps N]
                     [--minutes M] [--threads N] [--fanout N] [--checkpoint-every N] [--seed N]
                     [--memory-cap MB] [--loss mixture|plain] [--resume | --retrain] [--allow-home] [--json]
  workspace-lm complete --checkpoint DIR [--model served|gpt|counts] [--mode line|block]
                     [--max-tokens N] [--temperature T] [--top-p P] [--file PATH]
                     (reads a document on stdin and prints what the editor would suggest at its
                     end — empty when it would show nothing; --model compares the served model
                     with the GPT alone or the n-gram + copy models alone; --file names the
                     document, so the copy model leaves out its training copy)
  workspace-lm info --checkpoint DIR [--json]
  workspace-lm eval --checkpoint DIR [<folder>] [--json] [--cuts N] [--seed S] [--order N]
                     [--all-files] [--max-bytes N]
                     (held-out loss, bits per byte and next-line exact match / edit similarity of the
                     model and of a Kneser-Ney n-gram baseline; <folder>: the folder the run trained
                     on, or another folder, whose files are then all evaluated; writes DIR/eval.json)
  workspace-lm serve --stdio [--checkpoint DIR]
                     (LSP server with inline completions; without --checkpoint it serves the
                     newest checkpoint of the workspace root's run, in the runs folder below)
  workspace-lm export <folder|run-dir> --to DIR [--no-weights] [--json]
                     (a PyTorch training bundle: data, tokenizer, config, weights, train_torch.py
                     for one machine, several GPUs or nodes; see DIR/README.md)
  workspace-lm import DIR [--out RUN_DIR] [--json]
                     (checks a model folder, e.g. train_torch.py's --out, and makes it the served
                     model of RUN_DIR, default: the current folder's run)

Options:
  --out DIR      where the run lives (default: <folder name>-<hash> in the runs folder,
                 ${runsHome()} — outside the repository)
  --preset       ${Object.entries(PRESETS).map(([k, v]) => `${k} (${v.description})`).join('; ')} (default ${DEFAULT_PRESET})
  --minutes M    stop after M minutes, the learning rate annealed by then (default ${DEFAULT_TIME_BUDGET_MINUTES}; 0 = no limit)
  --threads N    worker threads (default: all cores; they run at low priority)
  --fanout N     leaders around the root of the gradient reduction tree (default ${DEFAULT_FANOUT})
  --loss         mixture (default: the GPT is trained for the served mixture, on what the n-gram and
                 copy models miss) or plain (its own cross-entropy, as if served alone)
  --memory-cap MB  memory budget (default ${DEFAULT_MEMORY_CAP_MB}): a larger workspace trains on a sample of its files
  --resume       continue the run in --out from its newest checkpoint
  --retrain      after the files changed: a new run from the previous model's weights
                 (only changed files are re-read and re-encoded)
  --allow-home   train a folder that is your home folder, one of its ancestors or a filesystem
                 root (refused otherwise: it holds far more than a project, secrets included)
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
    'allow-home': { type: 'boolean' }, loss: { type: 'string' },
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
  if (values.loss !== undefined) {
    if (values.loss !== 'mixture' && values.loss !== 'plain') throw new UsageError(`unknown --loss "${values.loss}": use mixture or plain`);
    train.loss = values.loss;
  }
  const outDir = path.resolve(values.out ?? defaultRunDir(folder));
  if (values.out === undefined) {
    const notice = await legacyRunNotice(folder);
    if (notice !== null) process.stderr.write(`note: ${notice}\n`);
  }
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
    await runTraining({ folders: [folder], outDir, preset, train, threads, fanout, resume: values.resume === true, retrain: values.retrain === true, signal: controller.signal, ...(values['allow-home'] === true ? { allowHomeOrRoot: true } : {}), ...(memoryCapMb !== undefined ? { memoryCapMb } : {}) }, emit);
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
    checkpoint: { type: 'string' }, model: { type: 'string' }, mode: { type: 'string' }, 'max-tokens': { type: 'string' },
    temperature: { type: 'string' }, 'top-p': { type: 'string' }, file: { type: 'string' },
  });
  if (values.checkpoint === undefined) throw new UsageError('complete needs --checkpoint DIR (the project folder, its run folder, or one of its checkpoints)');
  const model = values.model ?? DEFAULT_COMPLETION_SETTINGS.model;
  if (!isServedModelMode(model)) throw new UsageError(`--model expects one of ${SERVED_MODEL_MODES.join(', ')}, got "${model}"`);
  const mode = values.mode ?? DEFAULT_COMPLETION_SETTINGS.mode;
  if (mode !== 'line' && mode !== 'block') throw new UsageError(`--mode expects line or block, got "${mode}"`);
  // The editor's settings, with what the flags change: the same stop rules and confidence gate.
  const settings: CompletionSettings = {
    ...DEFAULT_COMPLETION_SETTINGS, model, mode,
    maxTokens: intFlag(values['max-tokens'], 'max-tokens', 1) ?? DEFAULT_COMPLETION_SETTINGS.maxTokens,
    temperature: numFlag(values.temperature, 'temperature', 0, 2) ?? DEFAULT_COMPLETION_SETTINGS.temperature,
    topP: numFlag(values['top-p'], 'top-p', 0.01, 1) ?? DEFAULT_COMPLETION_SETTINGS.topP,
  };
  const served = await loadServingModel(await resolveCheckpointArg(values.checkpoint));
  for (const r of served.rejected) process.stderr.write(`warning: skipped damaged checkpoint: ${r.reason}\n`);
  if (served.counts === undefined && model !== 'gpt') process.stderr.write(`note: the GPT serves alone (${served.countsSkipped ?? 'no n-gram model'})\n`);
  const text = await readStdin();
  // The document's URI, as the editor sends it: the copy model leaves out its training copy.
  const uri = values.file !== undefined ? pathToFileURL(path.resolve(values.file)).href : 'untitled:stdin';
  const engine = new CompletionEngine(() => served, settings);
  const result = await engine.complete({ uri, text, offset: text.length }, () => false);
  if (result.reason === 'no-model') throw new Error(`this model cannot serve --model ${model}: ${served.countsSkipped ?? 'no n-gram model'}`);
  // Exactly the suggestion the editor would show at the end of the text (empty: it shows none).
  process.stdout.write(result.text + '\n');
  if (result.text === '' && process.stderr.isTTY) process.stderr.write(`(no suggestion: ${result.reason})\n`);
  return 0;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { stdio: { type: 'boolean' }, checkpoint: { type: 'string' }, 'poll-ms': { type: 'string' } });
  if (values.stdio !== true) throw new UsageError('serve speaks LSP over stdio: run `workspace-lm serve --stdio [--checkpoint DIR]`');
  const pollMs = intFlag(values['poll-ms'], 'poll-ms', 50);
  const server = distPath('server.js');
  if (server === null) throw new Error('dist/server.js is missing next to the CLI: reinstall workspace-lm (or run `node esbuild.mjs`)');
  // The language server is its own process (the one VS Code runs too): it reads the editor's
  // stdin and writes its stdout directly, and exits when this process is gone (--clientProcessId).
  const args = [server, '--stdio', `--clientProcessId=${process.pid}`];
  if (values.checkpoint !== undefined) args.push('--checkpoint', path.resolve(values.checkpoint));
  if (pollMs !== undefined) args.push('--poll-ms', String(pollMs));
  const child = spawn(process.execPath, args, { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals): void => { child.kill(signal); };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal !== null ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
}

export async function infoCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { checkpoint: { type: 'string' }, json: { type: 'boolean' } });
  if (values.checkpoint === undefined) throw new UsageError('info needs --checkpoint DIR (the project folder, its run folder, or a checkpoint)');
  const dir = await resolveCheckpointArg(values.checkpoint);
  const ck = await loadCheckpoint(dir);
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
  let evalError: string | null = null;
  const evalReport = await readEvalReport(dir).catch((e: unknown) => { evalError = (e as Error).message; return null; });
  const lastEval = evalReport === null ? null : summarizeEval(evalReport);
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ ...info, eval: lastEval, ...(evalError !== null ? { eval_error: evalError } : {}) }) + '\n');
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
  lines.push(`eval        ${lastEval !== null ? formatEvalSummary(lastEval, s?.step ?? null) : evalError ?? 'none yet (workspace-lm eval --checkpoint DIR)'}`);
  for (const r of ck.rejected) lines.push(`warning     skipped damaged checkpoint: ${r.reason}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
