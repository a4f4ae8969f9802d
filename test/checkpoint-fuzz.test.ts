// Fuzzing the checkpoint loader: a valid checkpoint, mutated thousands of times with a seeded RNG
// (the header length, tensor offsets, dtypes and shapes, config.json's values, tokenizer.json,
// truncation, garbage, symbolic links, a FIFO, a folder in a file's place, the trainer state and
// its hashes). Every case must end as a clean load or as a one-line Error naming the case's
// folder: never a crash, a hang (the test's timeout is the net) or an unbounded allocation (a
// case that loads holds a model no bigger than its file). Each case runs in-process through
// loadCheckpoint, the loader the language server's watcher, `complete` and `import` use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gpt } from '../src/ml/gpt';
import { AdamW } from '../src/ml/adamw';
import { BpeTokenizer } from '../src/ml/bpe';
import { Rng } from '../src/ml/rng';
import { DEFAULT_TRAIN } from '../src/ml/config';
import { loadCheckpoint, saveCheckpoint } from '../src/run/checkpoint';

const CASES = 2000;
const SEED = 20240514;
const FILES = ['model.safetensors', 'config.json', 'tokenizer.json', 'trainer_state.json'] as const;
type FileName = (typeof FILES)[number];

const tmp = mkdtempSync(join(tmpdir(), 'wlm-fuzz-'));
const outside = join(tmp, 'outside-secret.json');
writeFileSync(outside, '{"token": "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"}');
const fifo = join(tmp, 'a-fifo');
const haveFifo = process.platform !== 'win32' && spawnSync('mkfifo', [fifo]).status === 0;

async function baseline(): Promise<Record<FileName, Buffer>> {
  const corpus = ['int main(void) {\n  return 0;\n}\n', 'function add(a, b) { return a + b; }\n'].map((s) => new TextEncoder().encode(s.repeat(30)));
  const tokenizer = BpeTokenizer.train(corpus, { vocabSize: 280 });
  const model = new Gpt({ vocabSize: tokenizer.vocabSize, contextLength: 8, dModel: 8, nLayer: 1, nHead: 2 });
  model.initWeights(new Rng(3));
  const run = join(tmp, 'source');
  const state = {
    step: 7, totalSteps: 10, tokensSeen: 100, elapsedSec: 1, cursor: { epoch: 0, index: 7 }, rng: new Rng(1).state(),
    model: model.cfg, train: DEFAULT_TRAIN, datasetHash: 'x', lastLoss: 3, lastValLoss: 3, history: [], evals: [],
  };
  const dir = await saveCheckpoint({ runDir: run, model, optimizer: new AdamW(model.numParams), tokenizer, state }, 1);
  return Object.fromEntries(FILES.map((f) => [f, readFileSync(join(dir, f))])) as Record<FileName, Buffer>;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Numbers and values a hostile file would use. */
const NASTY: unknown[] = [
  0, -1, 1, 2, 3, 7, 8, 16, 17, 255, 256, 1023, 65_535, 65_536, 65_537, 8192, 8193, 4096, 1e8, 1e18, 2 ** 53, 2 ** 64, -(2 ** 31),
  1.5, Number.MAX_VALUE, 1e-300, '8', '', 'gpt2', null, true, [], [1, 2], {}, { a: 1 }, 'x'.repeat(300), '__proto__', 'constructor',
];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function nastyNumber(rng: Rng, around: number): unknown {
  switch (rng.int(4)) {
    case 0: return pick(rng, NASTY);
    case 1: return around + rng.int(9) - 4;
    case 2: return around * pick(rng, [2, 4, 1000, 0.5]);
    default: return rng.int(1 << 20);
  }
}

function splitSafetensors(b: Buffer): { header: Record<string, any>; data: Buffer } {
  const len = Number(b.readBigUInt64LE(0));
  return { header: JSON.parse(b.subarray(8, 8 + len).toString('utf8')), data: b.subarray(8 + len) };
}

function joinSafetensors(header: unknown, data: Buffer, lengthField?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthField ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function mutateModel(rng: Rng, b: Buffer): Buffer {
  const { header, data } = splitSafetensors(b);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = pick(rng, names);
  const t = header[name];
  switch (rng.int(12)) {
    case 0: return joinSafetensors(header, data, pick(rng, [0n, 1n, 7n, BigInt(b.length), BigInt(b.length - 8), 0xffff_ffff_ffff_ffffn, 1n << 40n, BigInt(rng.int(b.length))]));
    case 1: t.dtype = pick(rng, ['F16', 'BF16', 'F64', 'I32', 'U8', 'U16', 'I64', 'f32', 'constructor', '', 7, null]); break;
    case 2: t.shape = rng.int(2) ? [...t.shape].reverse() : t.shape.map((d: number) => nastyNumber(rng, d)); break;
    case 3: t.data_offsets = t.data_offsets.map((d: number) => (rng.int(2) ? nastyNumber(rng, d) : d)); break;
    case 4: t.data_offsets = [...header[pick(rng, names)].data_offsets]; break; // alias another tensor
    case 5: delete header[name]; break;
    case 6: header[pick(rng, ['lm_head.weight', 'extra', name + '.copy', '__proto__'])] = { ...t }; break;
    case 7: header['__metadata__'] = pick(rng, [null, 3, { step: 5 }, { format: 'pt' }, [], 'x']); break;
    case 8: header[name] = pick(rng, [null, 1, 'x', [], { dtype: 'F32' }]); break;
    case 9: { // bytes flipped anywhere
      const out = Buffer.from(b);
      for (let i = 0, n = 1 + rng.int(8); i < n; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
      return out;
    }
    case 10: return b.subarray(0, rng.int(b.length));
    default: return Buffer.concat([b, Buffer.alloc(1 + rng.int(64), rng.int(256))]);
  }
  return joinSafetensors(header, data);
}

function mutateJson(rng: Rng, b: Buffer, mutateObject: (o: any) => void): Buffer {
  switch (rng.int(8)) {
    case 0: return b.subarray(0, rng.int(b.length)); // truncated
    case 1: { // bytes flipped
      const out = Buffer.from(b);
      for (let i = 0, n = 1 + rng.int(4); i < n; i++) out[rng.int(out.length)] = rng.int(256);
      return out;
    }
    case 2: return Buffer.from(pick(rng, ['', 'null', '[]', '"x"', '1e999', '{"a":', '\u0000\u0001', '['.repeat(50_000) + ']'.repeat(50_000), '{"__proto__": {"x": 1}}']));
    default: {
      const o = JSON.parse(b.toString('utf8'));
      mutateObject(o);
      return Buffer.from(JSON.stringify(o));
    }
  }
}

function mutateConfig(rng: Rng, o: any): void {
  const key = pick(rng, ['vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head', 'n_inner', 'model_type', 'activation_function', 'n_ctx']);
  if (rng.int(6) === 0) delete o[key];
  else o[key] = nastyNumber(rng, typeof o[key] === 'number' ? o[key] : 8);
}

function mutateTokenizer(rng: Rng, o: any): void {
  const m = o.model;
  const vocab = Object.keys(m.vocab);
  switch (rng.int(9)) {
    case 0: m.merges = m.merges.slice(0, rng.int(m.merges.length)); break;
    case 1: m.merges.push(pick(rng, m.merges)); break;
    case 2: m.vocab[pick(rng, vocab)] = nastyNumber(rng, 100); break;
    case 3: delete m.vocab[pick(rng, vocab)]; break;
    case 4: m.merges[rng.int(m.merges.length)] = pick(rng, ['', 'a', 'a b c', ['x'], 7, null, ['Ġ', 'Ġ']]); break;
    case 5: m.merges = rng.int(2) ? new Array(70_000).fill('a b') : pick(rng, [null, {}, 'x']); break;
    case 6: o.added_tokens = pick(rng, [[], null, [{ id: 0, content: '<|endoftext|>', special: true }]]); break;
    case 7: o.pre_tokenizer = pick(rng, [null, { type: 'ByteLevel' }, {}]); break;
    default: m.type = pick(rng, ['WordPiece', null, 'bpe']); break;
  }
}

function mutateState(rng: Rng, o: any): void {
  const key = pick(rng, ['format', 'version', 'step', 'files', 'files.model', 'model']);
  if (key === 'files.model') o.files['model.safetensors'] = pick(rng, ['', 'x', 3, null]);
  else o[key] = pick(rng, NASTY);
}

/** Replaces `file` by something that is not a regular file of the folder. */
function plantSpecial(rng: Rng, file: string): string {
  rmSync(file, { force: true, recursive: true });
  const kinds = ['outside', 'zero', 'dir', 'missing', 'inside', ...(haveFifo ? ['fifo', 'fifo-link'] : [])];
  const kind = pick(rng, kinds);
  switch (kind) {
    case 'outside': symlinkSync(outside, file); break;
    case 'zero': symlinkSync('/dev/zero', file); break;
    case 'dir': mkdirSync(file); break;
    case 'missing': break;
    case 'inside': symlinkSync(join(file, '..', 'config.json'), file); break;
    case 'fifo': spawnSync('mkfifo', [file]); break;
    case 'fifo-link': symlinkSync(fifo, file); break;
  }
  return kind;
}

test(`checkpoint loader fuzz: ${CASES} mutated checkpoints, each a clean load or a one-line error naming the folder`, { timeout: 600_000 }, async () => {
  const base = await baseline();
  const rng = new Rng(SEED);
  const outcomes = new Map<string, number>();
  const count = (k: string): void => { outcomes.set(k, (outcomes.get(k) ?? 0) + 1); };
  // One folder for all cases (each case rewrites every file; a planted link, FIFO or folder is
  // removed after its case), named per case in errors through a symlink-free path.
  const dir = join(tmp, 'case');
  mkdirSync(dir);
  for (let i = 0; i < CASES; i++) {
    const files: Record<string, Buffer> = { ...base };
    // Half the cases without a trainer state (an imported model: nothing vouches for the files,
    // so every parser is reached); with one, its hashes are usually re-signed after the mutation.
    const withState = rng.int(2) === 0;
    if (!withState) delete files['trainer_state.json'];
    const target = pick(rng, withState ? FILES : FILES.slice(0, 3));
    let what: string = target;
    switch (target) {
      case 'model.safetensors': files[target] = mutateModel(rng, base[target]); break;
      case 'config.json': files[target] = mutateJson(rng, base[target], (o) => mutateConfig(rng, o)); break;
      case 'tokenizer.json': files[target] = mutateJson(rng, base[target], (o) => mutateTokenizer(rng, o)); break;
      case 'trainer_state.json': files[target] = mutateJson(rng, base[target], (o) => mutateState(rng, o)); break;
    }
    if (withState && target !== 'trainer_state.json' && rng.int(4) !== 0) {
      const s = JSON.parse(base['trainer_state.json'].toString('utf8'));
      for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) s.files[f] = sha256(files[f]!);
      files['trainer_state.json'] = Buffer.from(JSON.stringify(s));
    }
    if (!withState) rmSync(join(dir, 'trainer_state.json'), { force: true });
    for (const [f, b] of Object.entries(files)) writeFileSync(join(dir, f), b);
    const special = rng.int(10) === 0;
    if (special) what = `${target}:${plantSpecial(rng, join(dir, target))}`;
    let outcome: string;
    try {
      const ck = await loadCheckpoint(dir);
      // A load that succeeds holds a model its file paid for: no allocation beyond the file's size.
      assert.ok(ck.model.numParams * 4 <= files['model.safetensors']!.length, `case ${i} (${what}): ${ck.model.numParams} parameters from a ${files['model.safetensors']!.length}-byte file`);
      outcome = 'loaded';
    } catch (e) {
      assert.ok(e instanceof Error, `case ${i} (${what}): threw a non-Error ${String(e)}`);
      assert.ok(!e.message.includes('\n'), `case ${i} (${what}): a multi-line error: ${e.message}`);
      assert.ok(e.message.includes(dir), `case ${i} (${what}): the error does not name the folder ${dir}: ${e.message}`);
      assert.ok(e.message.length < 2000, `case ${i} (${what}): a ${e.message.length}-character error`);
      assert.ok(!e.message.includes('ghp_'), `case ${i} (${what}): the error quotes a file outside the folder: ${e.message}`);
      outcome = 'error';
    }
    count(`${what.split(':')[0]} ${outcome}`);
    if (special) rmSync(join(dir, target), { recursive: true, force: true });
  }
  if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify([...outcomes].sort()));
  // The fuzzer reaches both outcomes for every file (else it tests nothing).
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) assert.ok((outcomes.get(`${f} error`) ?? 0) > 20, `${f}: ${JSON.stringify([...outcomes])}`);
  assert.ok((outcomes.get('model.safetensors loaded') ?? 0) + (outcomes.get('config.json loaded') ?? 0) > 0, JSON.stringify([...outcomes]));
  rmSync(tmp, { recursive: true, force: true });
});
