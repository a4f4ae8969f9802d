// The CLI as a user runs it: the built dist/cli.js (npm test builds first), on this repository's
// own src/ folder as the corpus, with the tiny preset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServingModel } from '../src/completion/servingModel';
import { CompletionEngine } from '../src/completion/engine';
import { DEFAULT_COMPLETION_SETTINGS, DEFAULT_TRAIN } from '../src/ml/config';

const root = join(__dirname, '..');
const cli = join(root, 'dist', 'cli.js');
const corpus = join(root, 'src');

type Ev = Record<string, unknown> & { event: string };

function run(args: string[], input?: string) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input, maxBuffer: 64 << 20 });
}

function events(stdout: string): Ev[] {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev);
}

const STEPS = 40;
const tmp = mkdtempSync(join(tmpdir(), 'wlm-cli-'));
const fullRun = join(tmp, 'full');
let fullEvents: Ev[] = [];

test('train --json: phases, steps, evals, checkpoints, done; loss falls well below ln(vocab); HF files written', () => {
  const r = run(['train', corpus, '--preset', 'tiny', '--max-steps', String(STEPS), '--checkpoint-every', '10', '--out', fullRun, '--json']);
  assert.equal(r.status, 0, r.stderr);
  fullEvents = events(r.stdout);
  const phases = fullEvents.filter((e) => e.event === 'phase').map((e) => e.phase);
  // The default loss is the served mixture's: the count models score the training tokens first.
  assert.equal(DEFAULT_TRAIN.loss, 'mixture');
  assert.deepEqual(phases, ['indexing', 'tokenizer', 'encoding', 'counts', 'training']);
  const counts = fullEvents.find((e) => e.event === 'counts')!;
  assert.ok(counts !== undefined && (counts.tokens as number) > 0 && (counts.counts_nats as number) > 0 && (counts.ngram_nats as number) > 0, JSON.stringify(counts));
  const steps = fullEvents.filter((e) => e.event === 'step');
  assert.equal(steps.length, STEPS);
  for (const key of ['step', 'loss', 'lr', 'tokens_per_s', 'elapsed_s']) assert.equal(typeof steps[0]![key], 'number', key);
  assert.ok(fullEvents.some((e) => e.event === 'eval' && typeof e.val_loss === 'number'));
  assert.deepEqual(fullEvents.filter((e) => e.event === 'checkpoint').map((e) => e.step), [10, 20, 30, 40]);
  const done = fullEvents.find((e) => e.event === 'done')!;
  assert.ok(done, 'no done event');
  assert.equal(done.steps, STEPS);
  const model = fullEvents.find((e) => e.event === 'model')!;
  const lnV = Math.log(model.vocab_size as number);
  assert.ok((steps[0]!.loss as number) > lnV - 0.3, 'a fresh model starts near ln(vocab)');
  assert.ok((done.train_loss as number) < lnV - 0.8, `train loss ${done.train_loss} not well below ln(V) = ${lnV}`);
  assert.ok((done.val_loss as number) < lnV - 0.8, `val loss ${done.val_loss} not well below ln(V) = ${lnV}`);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'trainer_state.json', 'data/train.bin', 'data/val.bin', 'data/meta.json']) {
    assert.ok(existsSync(join(fullRun, f)), `missing ${f}`);
  }
});

test('kill -9 mid-run, then --resume: continues from the last checkpoint with the same losses as an uninterrupted run', async () => {
  const out = join(tmp, 'killed');
  const child = spawn(process.execPath, [cli, 'train', corpus, '--preset', 'tiny', '--max-steps', String(STEPS), '--checkpoint-every', '10', '--out', out, '--json']);
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      // Kill a few steps after the second checkpoint: between checkpoints, mid-step work lost.
      if (/"event":"step","step":23,/.test(buf) && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', () => resolve());
    child.on('error', reject);
  });
  assert.ok(!events(buf).some((e) => e.event === 'done'), 'the run finished before it was killed');
  const r = run(['train', corpus, '--preset', 'tiny', '--max-steps', String(STEPS), '--checkpoint-every', '10', '--out', out, '--json', '--resume']);
  assert.equal(r.status, 0, r.stderr);
  const resumed = events(r.stdout);
  const model = resumed.find((e) => e.event === 'model')!;
  assert.equal(model.resumed_from_step, 20);
  const resumedSteps = resumed.filter((e) => e.event === 'step');
  assert.equal(resumedSteps[0]!.step, 21);
  const fullLoss = new Map(fullEvents.filter((e) => e.event === 'step').map((e) => [e.step, e.loss as number]));
  for (const e of resumedSteps) {
    const ref = fullLoss.get(e.step as number)!;
    assert.ok(Math.abs((e.loss as number) - ref) <= 1e-6 * ref, `step ${e.step}: resumed loss ${e.loss} vs uninterrupted ${ref}`);
  }
  assert.equal(resumed.find((e) => e.event === 'done')!.steps, STEPS);
});

test('complete prints what the completion engine suggests at the end of the text, per --model; bad flags are usage errors', async () => {
  const prompt = 'export function ';
  const served = await loadServingModel(fullRun);
  for (const model of ['served', 'gpt', 'counts'] as const) {
    const r = run(['complete', '--checkpoint', fullRun, '--model', model, '--max-tokens', '12'], prompt);
    assert.equal(r.status, 0, r.stderr);
    // The same engine in-process, with the editor's settings and the flags' changes.
    const engine = new CompletionEngine(() => served, { ...DEFAULT_COMPLETION_SETTINGS, model, maxTokens: 12 }, {});
    const want = await engine.complete({ uri: 'untitled:stdin', text: prompt, offset: prompt.length }, () => false);
    assert.equal(r.stdout, want.text + '\n', `--model ${model} (${want.reason})`);
  }
  const bad = run(['complete', '--checkpoint', fullRun, '--model', 'bogus'], prompt);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--model expects one of served, gpt, counts/);
});

test('info shows the model and its training state', () => {
  const r = run(['info', '--checkpoint', fullRun, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.step, STEPS);
  assert.equal(info.n_layer, 2);
  assert.ok(info.params > 100_000);
});

test('bad input: one clear line and a non-zero exit code', () => {
  const empty = mkdtempSync(join(tmpdir(), 'wlm-empty-'));
  let r = run(['train', empty, '--preset', 'tiny', '--out', join(tmp, 'o1')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /error: no files in/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without --verbose');

  const binary = mkdtempSync(join(tmpdir(), 'wlm-bin-'));
  writeFileSync(join(binary, 'blob.dat2'), Buffer.from([0, 1, 2, 0, 255, 0]));
  mkdirSync(join(binary, 'node_modules'));
  writeFileSync(join(binary, 'node_modules', 'x.js'), 'module.exports = 1;\n');
  r = run(['train', binary, '--preset', 'tiny', '--out', join(tmp, 'o2')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /error: no text files to train on/);

  r = run(['info', '--checkpoint', empty]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not a workspace-lm model/);

  r = run(['train', corpus, '--max-steps', 'many']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--max-steps expects an integer/);

  r = run(['frobnicate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command/);
});
