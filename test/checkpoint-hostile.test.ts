// Model and run folders are data, never a weapon: a config.json that sizes a billion objects, a
// model.safetensors that is a FIFO or a link to /dev/zero, a tokenizer.json with 70,000 merges, a
// damaged checkpoint that would push good ones out — each is a one-line error naming the file
// (or, for pruning, a folder moved aside), never a hang, a crash or an unbounded allocation.
// (A hang fails by the test's timeout, a safety net: nothing here measures a time.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHfConfig, MODEL_LIMITS, PRESETS, validateModelConfig, DEFAULT_TRAIN } from '../src/ml/config';
import { Gpt } from '../src/ml/gpt';
import { AdamW } from '../src/ml/adamw';
import { BpeTokenizer } from '../src/ml/bpe';
import { Rng } from '../src/ml/rng';
import { decodeSafetensors, encodeSafetensors } from '../src/ml/safetensors';
import { listCheckpoints, loadCheckpoint, saveCheckpoint } from '../src/run/checkpoint';
import { importModel } from '../src/run/exportBundle';
import { readDatasetMeta } from '../src/run/layout';
import { readEvalReport } from '../src/run/evalReport';
import { readRegularFile } from '../src/run/safeRead';
import { ModelWatcher } from '../src/server/modelWatcher';
import type { ModelStatusParams } from '../src/shared/protocol';

const root = join(__dirname, '..');
const tmp = (prefix: string): string => mkdtempSync(join(tmpdir(), `wlm-hostile-${prefix}-`));
const unix = process.platform !== 'win32';
const HANG_GUARD = { timeout: 120_000 };

function mkfifo(file: string): void {
  const r = spawnSync('mkfifo', [file]);
  assert.equal(r.status, 0, `mkfifo ${file}: ${r.stderr}`);
}

/** An error that is one line and names `what` (a path, or a part of one). */
function oneLineNaming(what: string, pattern?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `a multi-line error: ${e.message}`);
    assert.ok(e.message.includes(what), `the error does not name ${what}: ${e.message}`);
    if (pattern !== undefined) assert.match(e.message, pattern);
    return true;
  };
}

const corpus = [
  'int main(int argc, char **argv) {\n    return 0;\n}\n',
  'export function add(a: number, b: number): number {\n  return a + b;\n}\n',
].map((s) => new TextEncoder().encode(s.repeat(20)));
const tokenizer = BpeTokenizer.train(corpus, { vocabSize: 300 });

function model(): Gpt {
  const m = new Gpt({ vocabSize: tokenizer.vocabSize, contextLength: 16, dModel: 16, nLayer: 2, nHead: 2 });
  m.initWeights(new Rng(1));
  return m;
}

function stateAt(step: number, m: Gpt) {
  return {
    step, totalSteps: 100, tokensSeen: step * 64, elapsedSec: step / 10, cursor: { epoch: 0, index: step }, rng: new Rng(9).state(),
    model: m.cfg, train: DEFAULT_TRAIN, datasetHash: 'abc', lastLoss: 3.5, lastValLoss: 3.7, history: [], evals: [],
  };
}

/** A run with one trained checkpoint (step 10); returns the run and the checkpoint folder. */
async function savedRun(): Promise<{ run: string; ck: string; m: Gpt }> {
  const run = tmp('run');
  const m = model();
  const ck = await saveCheckpoint({ runDir: run, model: m, optimizer: new AdamW(m.numParams), tokenizer, state: stateAt(10, m) }, 2);
  return { run, ck, m };
}

/** A model folder (model.safetensors + config.json + tokenizer.json, no trainer state: what import reads). */
async function modelFolder(): Promise<string> {
  const { ck } = await savedRun();
  const dir = tmp('model');
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) cpSync(join(ck, f), join(dir, f));
  return dir;
}

test('config.json: every dimension is bounded, so no config can size an allocation the process cannot survive', () => {
  const base = { model_type: 'gpt2', vocab_size: 1024, n_positions: 64, n_ctx: 64, n_embd: 64, n_layer: 2, n_head: 4 };
  assert.deepEqual(fromHfConfig(base), { vocabSize: 1024, contextLength: 64, dModel: 64, nLayer: 2, nHead: 4 });
  for (const p of Object.values(PRESETS)) validateModelConfig(p.model);
  // GPT-2 large loads (the bounds are not tight for real models).
  fromHfConfig({ ...base, vocab_size: 50257, n_positions: 1024, n_embd: 1280, n_layer: 36, n_head: 20 });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ n_layer: 1e8 }, /config\.json: n_layer 100000000 exceeds 64/],
    [{ n_embd: 1 << 20, n_head: 1 }, /config\.json: n_embd 1048576 exceeds 4096/],
    [{ vocab_size: 70_000 }, /config\.json: vocab_size 70000 exceeds 65536 \(token ids are uint16/],
    [{ n_positions: 1e6 }, /config\.json: n_positions 1000000 exceeds 8192/],
    [{ n_head: 128, n_embd: 128 }, /config\.json: n_head 128 exceeds 64/],
    [{ n_head: 3 }, /config\.json: n_embd 64 is not divisible by n_head 3/],
    [{ n_layer: 1.5 }, /config\.json: n_layer must be a positive integer/],
    [{ n_layer: -1 }, /config\.json: n_layer must be a positive integer/],
    [{ vocab_size: Number.MAX_VALUE }, /config\.json: vocab_size .* exceeds 65536/],
    [{ n_positions: 8192, n_head: 64, n_embd: 64 }, /attention scratch and KV cache per sequence, more than/],
    [{ model_type: 'llama\n<secret>'.repeat(20) }, /^config\.json: model_type "llama\?<secret>.{0,40}" is not supported/],
  ];
  for (const [patch, message] of cases) {
    assert.throws(() => fromHfConfig({ ...base, ...patch }), (e: Error) => message.test(e.message) && !e.message.includes('\n'), JSON.stringify(patch).slice(0, 80));
  }
  assert.equal(MODEL_LIMITS.vocabSize, 65_536);
});

test('a config.json that would build a billion objects (n_layer 1e8) is an error naming it, not an out-of-memory crash', HANG_GUARD, async () => {
  const dir = await modelFolder();
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, n_layer: 1e8 }));
  // In a child process with a small heap: on a build without the bound V8 dies there, uncatchably.
  const script = `require(${JSON.stringify(join(root, 'src/run/checkpoint.ts'))}).loadCheckpoint(${JSON.stringify(dir)}).then(() => console.log('LOADED'), (e) => console.log('ERROR ' + e.message));`;
  const r = spawnSync(process.execPath, ['--max-old-space-size=200', '--import', 'tsx', '-e', script], { encoding: 'utf8', cwd: root });
  assert.equal(r.status, 0, `the loader crashed (status ${r.status}, signal ${r.signal}): ${r.stderr.split('\n').slice(-5).join(' ')}`);
  assert.match(r.stdout, /^ERROR .*config\.json: n_layer 100000000 exceeds 64/);
});

test('a config within bounds that implies far more weights than the file holds fails on the header, before the weights are allocated', async () => {
  const dir = await modelFolder();
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  // 64 layers of width 4096: 12.9G parameters (52 GB), for a file of 40 KB.
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, n_embd: 4096, n_layer: 64, n_head: 64, n_positions: 16, n_ctx: 16 }));
  await assert.rejects(loadCheckpoint(dir), oneLineNaming(join(dir, 'model.safetensors'), /tensor transformer\.wte\.weight has shape \[\d+, 16\], config\.json implies \[\d+, 4096\]/));
});

test('extra, aliased and oversized tensors in model.safetensors are errors naming the file', async () => {
  const dir = await modelFolder();
  const file = join(dir, 'model.safetensors');
  const good = readFileSync(file);
  const st = decodeSafetensors(good);
  const tensors = [...st.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
  writeFileSync(file, encodeSafetensors([...tensors, { name: 'lm_head.payload', shape: [4], data: new Float32Array(4) }]));
  await assert.rejects(loadCheckpoint(dir), oneLineNaming(file, /unexpected tensor lm_head\.payload/));
  // Two tensors over the same bytes: edit the header's offsets in place (same length).
  const headerLen = Number(good.readBigUInt64LE(0));
  const header = JSON.parse(good.subarray(8, 8 + headerLen).toString('utf8'));
  header['transformer.h.0.ln_1.bias'].data_offsets = header['transformer.h.0.ln_1.weight'].data_offsets;
  const json = Buffer.from(JSON.stringify(header).padEnd(headerLen, ' '));
  assert.equal(json.length, headerLen);
  writeFileSync(file, Buffer.concat([good.subarray(0, 8), json, good.subarray(8 + headerLen)]));
  await assert.rejects(loadCheckpoint(dir), oneLineNaming(file, /overlap/));
  // A header length of 2^64 - 1.
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(0xffff_ffff_ffff_ffffn, 0);
  writeFileSync(file, huge);
  await assert.rejects(loadCheckpoint(dir), oneLineNaming(file, /header length .* exceeds the file size/));
});

test('tokenizer.json: more ids than uint16 holds is refused before its merges are walked', async () => {
  const dir = await modelFolder();
  const file = join(dir, 'tokenizer.json');
  const tok = JSON.parse(readFileSync(file, 'utf8'));
  tok.model.merges = Array.from({ length: 70_000 }, () => 'a b');
  writeFileSync(file, JSON.stringify(tok));
  await assert.rejects(loadCheckpoint(dir), oneLineNaming(file, /70000 merges: at most 65276 fit in 65536 token ids/));
  tok.model.merges = [];
  tok.model.vocab = { ...tok.model.vocab, far: 70_000 };
  writeFileSync(file, JSON.stringify(tok));
  await assert.rejects(loadCheckpoint(dir), oneLineNaming(file, /vocab entry "far" has invalid id 70000/));
});

test('readRegularFile: regular files only, links only inside the folder, a size cap checked before reading', { ...HANG_GUARD, skip: !unix }, async () => {
  const dir = tmp('read');
  const outside = tmp('outside');
  writeFileSync(join(dir, 'ok.json'), '{}');
  writeFileSync(join(outside, 'secret'), 'ssh-rsa AAAA');
  symlinkSync(join(outside, 'secret'), join(dir, 'out.json'));
  symlinkSync(join(dir, 'ok.json'), join(dir, 'in.json'));
  symlinkSync('/dev/zero', join(dir, 'zero.json'));
  mkfifo(join(dir, 'fifo.json'));
  mkdirSync(join(dir, 'folder.json'));
  const opts = { allowSymlinkWithin: dir };
  assert.equal((await readRegularFile(join(dir, 'ok.json'), 10, opts)).toString(), '{}');
  assert.equal((await readRegularFile(join(dir, 'in.json'), 10, opts)).toString(), '{}', 'a link inside the folder is fine');
  await assert.rejects(readRegularFile(join(dir, 'in.json'), 10), oneLineNaming('in.json', /symbolic link: refusing/));
  await assert.rejects(readRegularFile(join(dir, 'out.json'), 100, opts), oneLineNaming('out.json', /symbolic link to outside/));
  await assert.rejects(readRegularFile(join(dir, 'zero.json'), 100, opts), oneLineNaming('zero.json', /outside|device/));
  await assert.rejects(readRegularFile(join(dir, 'fifo.json'), 100, opts), oneLineNaming('fifo.json', /is a FIFO, not a regular file/));
  await assert.rejects(readRegularFile(join(dir, 'folder.json'), 100, opts), oneLineNaming('folder.json', /is a folder/));
  await assert.rejects(readRegularFile(join(dir, 'ok.json'), 1, opts), oneLineNaming('ok.json', /2 bytes, more than the 1 bytes/));
  await assert.rejects(readRegularFile(join(dir, 'none.json'), 1, opts), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && /missing .*none\.json/.test(e.message));
});

test('a FIFO, a link to /dev/zero or to a file outside the folder in a checkpoint is refused at once, naming the file', { ...HANG_GUARD, skip: !unix }, async () => {
  const outside = tmp('outside');
  for (const [name, plant] of [
    ['model.safetensors', (f: string) => { cpSync(f, join(outside, 'm')); rmSync(f); symlinkSync(join(outside, 'm'), f); }],
    ['config.json', (f: string) => { rmSync(f); mkfifo(f); }],
    ['model.safetensors', (f: string) => { rmSync(f); mkfifo(f); }],
    ['tokenizer.json', (f: string) => { rmSync(f); mkfifo(f); }],
    ['trainer_state.json', (f: string) => { rmSync(f); mkfifo(f); }],
    ['model.safetensors', (f: string) => { rmSync(f); symlinkSync('/dev/zero', f); }],
  ] as [string, (f: string) => void][]) {
    const { ck } = await savedRun();
    plant(join(ck, name));
    await assert.rejects(loadCheckpoint(ck), oneLineNaming(join(ck, name)), name);
  }
  // Imported model folders too.
  const dir = await modelFolder();
  rmSync(join(dir, 'model.safetensors'));
  mkfifo(join(dir, 'model.safetensors'));
  await assert.rejects(importModel(dir, tmp('target')), oneLineNaming(join(dir, 'model.safetensors'), /FIFO/));
});

test('the model watcher reports a FIFO or /dev/zero in the run as an error and keeps polling; the run\'s other readers do not block', { ...HANG_GUARD, skip: !unix }, async () => {
  for (const plant of [
    (ck: string) => { rmSync(join(ck, 'config.json')); mkfifo(join(ck, 'config.json')); },
    (ck: string) => { rmSync(join(ck, 'model.safetensors')); symlinkSync('/dev/zero', join(ck, 'model.safetensors')); },
  ]) {
    const { run, ck } = await savedRun();
    plant(ck);
    const seen: ModelStatusParams[] = [];
    const w = new ModelWatcher(run, (s) => seen.push(s), 60_000);
    await w.check();
    const last = seen[seen.length - 1]!;
    assert.equal(last.state, 'error', JSON.stringify(seen));
    assert.match(last.message, /step-0000010\/(config\.json|model\.safetensors)/);
    assert.equal(w.model, null);
  }
  // data/meta.json, eval.json: a FIFO is unreadable (null, or an error naming it), never a wait.
  const { run } = await savedRun();
  mkdirSync(join(run, 'data'));
  mkfifo(join(run, 'data', 'meta.json'));
  assert.equal(await readDatasetMeta(run), null);
  mkfifo(join(run, 'eval.json'));
  await assert.rejects(readEvalReport(run), oneLineNaming(join(run, 'eval.json'), /FIFO/));
});

test('pruning counts only checkpoints that verify: a damaged newest one is moved aside, never deleted, and the good ones survive per keep', async () => {
  const run = tmp('prune');
  const m = model();
  const opt = new AdamW(m.numParams);
  const save = (step: number) => saveCheckpoint({ runDir: run, model: m, optimizer: opt, tokenizer, state: stateAt(step, m) }, 2);
  await save(10);
  await save(20);
  const damaged = join(run, 'checkpoints', 'step-0000020', 'model.safetensors');
  const bytes = readFileSync(damaged);
  bytes[bytes.length - 3] ^= 0xff;
  writeFileSync(damaged, bytes);
  await save(30);
  const names = (await listCheckpoints(run)).map((d) => d.split('/').pop());
  assert.deepEqual(names, ['step-0000030', 'step-0000010'], 'the damaged step 20 held a slot and pushed step 10 out');
  const aside = readdirSync(join(run, 'checkpoints')).filter((n) => n.startsWith('.damaged-step-0000020-'));
  assert.equal(aside.length, 1, `moved aside: ${readdirSync(join(run, 'checkpoints')).join(', ')}`);
  assert.deepEqual(readFileSync(join(run, 'checkpoints', aside[0]!, 'model.safetensors')), bytes, 'kept as it was');
  // Both survivors load; the next save prunes by the same rule.
  for (const d of await listCheckpoints(run)) await loadCheckpoint(d, { withOptimizer: true });
  await save(40);
  assert.deepEqual((await listCheckpoints(run)).map((d) => d.split('/').pop()), ['step-0000040', 'step-0000030']);
  assert.ok(existsSync(join(run, 'checkpoints', aside[0]!)), 'a damaged checkpoint is never deleted');
});
