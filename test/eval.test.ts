// `workspace-lm eval` as a user runs it (the built dist/cli.js): on a tiny run over a two-language
// fixture — the JSON shape, determinism with --seed, the held-out vs other-folder modes, eval.json
// and `info`, and the baseline's numbers reproduced independently from train.bin.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpeTokenizer } from '../src/ml/bpe';
import { KneserNey, NgramSession } from '../src/ml/ngram';
import { gptTokenLosses } from '../src/eval/evaluate';
import { copyTokenScores, ngramTokenScores } from '../src/ml/mixture';
import { CopyCorpus, CopySession } from '../src/ml/copyModel';
import { fitDocuments, trainNgram } from '../src/completion/countModels';
import { fitServedWeights } from '../src/ml/servedModel';
import { tokensFromBytes } from '../src/ml/dataset';
import { assembleServedModel, loadServingModel } from '../src/completion/servingModel';
import { CompletionEngine, CompletionModel } from '../src/completion/engine';
import { DEFAULT_COMPLETION_SETTINGS } from '../src/ml/config';
import { Rng } from '../src/ml/rng';

const root = join(__dirname, '..');
const cli = join(root, 'dist', 'cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'wlm-eval-'));
const corpus = join(tmp, 'corpus');
const other = join(tmp, 'other');
const run = join(tmp, 'run');

function cliRun(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Code-like files in two languages with repeated idioms, so both models learn something. */
function jsFile(rng: Rng, i: number): string {
  let s = `// module ${i}\nconst items = [];\n`;
  for (let k = 0; k < 25; k++) {
    const name = ['alpha', 'beta', 'gamma', 'delta'][rng.int(4)]!;
    s += rng.next() < 0.5 ? `function ${name}${k}(x) {\n  return x + ${rng.int(9)};\n}\n` : `items.push(${name}${rng.int(25)}(${rng.int(9)}));\n`;
  }
  return s;
}
function pyFile(rng: Rng, i: number): string {
  let s = `# module ${i}\nimport os\n\n`;
  for (let k = 0; k < 20; k++) s += `def f${k}(path):\n    return os.path.join(path, "${['a', 'b', 'c'][rng.int(3)]}")\n\n`;
  return s;
}

before(() => {
  mkdirSync(corpus);
  mkdirSync(other);
  const rng = new Rng(4);
  for (let i = 0; i < 30; i++) writeFileSync(join(corpus, `m${i}.js`), jsFile(rng, i));
  for (let i = 0; i < 20; i++) writeFileSync(join(corpus, `p${i}.py`), pyFile(rng, i));
  for (let i = 0; i < 3; i++) writeFileSync(join(other, `x${i}.js`), jsFile(rng, 100 + i));
  const r = cliRun(['train', corpus, '--preset', 'tiny', '--max-steps', '150', '--out', run, '--json']);
  assert.equal(r.status, 0, r.stderr);
});

type Report = Record<string, unknown> & {
  val_loss: number; bits_per_byte: number; tokens: number; bytes: number; files: number; source: string; cuts: number;
  next_line: { exact_match: number; edit_similarity: number; n: number };
  baseline: { val_loss: number; bits_per_byte: number; next_line: { exact_match: number; edit_similarity: number; n: number }; cache: { weight: number; concentration: number; capacity: number }; order: number };
  model: string;
  gpt: { val_loss: number; bits_per_byte: number; next_line: { exact_match: number; edit_similarity: number; n: number } };
  mixture: { cross_fitted: boolean; buckets: string[]; folds: { weights: number[]; counts: number[]; nats: { gpt: number; ngram: number; mixture: number } }[] };
  by_language: Record<string, { files: number; next_line: { n: number } }>;
  examples: { truth: string; model: string; gpt: string; baseline: string }[];
};

/** The report without what legitimately differs between two runs (timings). */
function stable(r: Report): unknown {
  const { seconds: _s, evaluated_at: _e, baseline, ...rest } = r as Report & { seconds: number; evaluated_at: string };
  const { train_seconds: _t, ...b } = baseline as Report['baseline'] & { train_seconds: number };
  return { ...rest, baseline: b };
}

test('eval --json on the held-out files: the required fields, for the model and the baseline; deterministic with --seed', () => {
  const r1 = cliRun(['eval', '--checkpoint', run, corpus, '--json', '--cuts', '40', '--seed', '3']);
  assert.equal(r1.status, 0, r1.stderr);
  const a = JSON.parse(r1.stdout) as Report;
  const meta = JSON.parse(readFileSync(join(run, 'data', 'meta.json'), 'utf8')) as { val_files: string[] };
  assert.equal(a.source, 'held-out');
  assert.equal(a.files, meta.val_files.length);
  assert.equal(a.model, 'gpt+ngram');
  for (const m of [a, a.gpt, a.baseline]) {
    assert.ok(m.val_loss > 0 && Number.isFinite(m.val_loss));
    assert.ok(m.bits_per_byte > 0 && Number.isFinite(m.bits_per_byte));
    assert.equal(m.next_line.n, 40);
    assert.ok(m.next_line.exact_match >= 0 && m.next_line.exact_match <= 1);
    assert.ok(m.next_line.edit_similarity >= 0 && m.next_line.edit_similarity <= 1);
  }
  // Two halves of the files, each with one GPT share per n-gram depth, fitted on the other half.
  assert.equal(a.mixture.folds.length, 2);
  // Cross-fitted when both halves have files; otherwise both "halves" are fitted on everything.
  if (!a.mixture.cross_fitted) assert.deepEqual(a.mixture.folds[0], a.mixture.folds[1]);
  for (const f of a.mixture.folds) {
    assert.equal(f.weights.length, a.baseline.order * 4);
    assert.equal(a.mixture.buckets.length, f.weights.length);
    assert.ok(f.weights.every((w) => w > 0 && w < 1));
    // A mixture of probabilities is never worse than the worse model, token by token (test/mixture.test.ts
    // checks the fit itself against a brute-force search).
    assert.ok(f.nats.mixture <= Math.max(f.nats.gpt, f.nats.ngram) + 1e-9);
  }
  // bits per byte is the loss restated per byte: nats·tokens / (ln 2 · bytes).
  assert.ok(Math.abs(a.bits_per_byte - (a.val_loss * a.tokens) / (Math.LN2 * a.bytes)) < 1e-9);
  // The per-language rows add up.
  const langs = Object.values(a.by_language);
  assert.equal(langs.reduce((s, l) => s + l.files, 0), a.files);
  assert.equal(langs.reduce((s, l) => s + l.next_line.n, 0), 40);
  assert.equal(a.examples.length, 3);
  // The served model's loss is at most that of the worse of the two (a convex mix of probabilities).
  assert.ok(a.val_loss <= Math.max(a.gpt.val_loss, a.baseline.val_loss) + 1e-9);

  const r2 = cliRun(['eval', '--checkpoint', run, corpus, '--json', '--cuts', '40', '--seed', '3']);
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual(stable(JSON.parse(r2.stdout) as Report), stable(a), 'same seed, same report');
  const r3 = cliRun(['eval', '--checkpoint', run, corpus, '--json', '--cuts', '40', '--seed', '4']);
  assert.notDeepEqual((JSON.parse(r3.stdout) as Report).examples, a.examples, 'another seed, other cut points');
});

test('the baseline\'s loss is reproduced independently: KN on train.bin, the reported cache, the held-out files', () => {
  const a = JSON.parse(readFileSync(join(run, 'eval.json'), 'utf8')) as Report;
  const tok = BpeTokenizer.fromHuggingFaceJSON(JSON.parse(readFileSync(join(run, 'tokenizer.json'), 'utf8')));
  const raw = readFileSync(join(run, 'data', 'train.bin'));
  const train = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const kn = KneserNey.train(train, { order: a.baseline.order, vocabSize: tok.vocabSize, eotId: tok.eotId });
  const meta = JSON.parse(readFileSync(join(run, 'data', 'meta.json'), 'utf8')) as { val_files: string[] };
  let nats = 0, tokens = 0;
  for (const f of meta.val_files) {
    const ids = [...tok.encodeBytes(readFileSync(join(corpus, f))), tok.eotId];
    const s = new NgramSession(kn, a.baseline.cache);
    s.push(tok.eotId);
    for (const id of ids) {
      nats -= s.logProb(id);
      s.push(id);
      tokens++;
    }
  }
  assert.equal(tokens, a.tokens);
  assert.ok(Math.abs(nats / tokens - a.baseline.val_loss) < 1e-9, `${nats / tokens} vs ${a.baseline.val_loss}`);
});

test('eval writes eval.json next to trainer_state.json, and info shows it', () => {
  assert.ok(existsSync(join(run, 'eval.json')));
  const info = cliRun(['info', '--checkpoint', run, '--json']);
  assert.equal(info.status, 0, info.stderr);
  const j = JSON.parse(info.stdout) as { eval: { bits_per_byte: number; exact_match: number; baseline: { exact_match: number } } | null };
  assert.ok(j.eval !== null && typeof j.eval.bits_per_byte === 'number' && typeof j.eval.baseline.exact_match === 'number');
  const text = cliRun(['info', '--checkpoint', run]);
  assert.match(text.stdout, /^eval {8}bits\/byte [\d.]+ vs n-gram [\d.]+; next-line EM [\d.]+% vs [\d.]+%/m);
});

test('eval of another folder evaluates all its files; the terminal table; without a folder, the run\'s own', () => {
  const r = cliRun(['eval', '--checkpoint', run, other, '--json', '--cuts', '10']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Report;
  assert.equal(j.source, 'folder');
  assert.equal(j.files, 3);
  assert.equal(typeof j.mixture.cross_fitted, 'boolean');
  if (!j.mixture.cross_fitted) assert.deepEqual(j.mixture.folds[0], j.mixture.folds[1]);
  else assert.notDeepEqual(j.mixture.folds[0], j.mixture.folds[1]);
  const t = cliRun(['eval', '--checkpoint', run, corpus, '--cuts', '10']);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /Workspace LM \(GPT \+ n-gram \+ copy, as served\)/);
  assert.match(t.stdout, /GPT alone \(this run\)/);
  assert.match(t.stdout, /n-gram baseline \(KN 4-gram \+ cache\)/);
  assert.match(t.stdout, /example 1: /);
  assert.match(t.stdout, /without the GPT \(n-gram \+ copy: the counts\)/);
  assert.match(t.stdout, /what the GPT adds to the counts: [+-]\d/);
  // Without a folder: the one the run recorded in data/meta.json, and its held-out files.
  const e = cliRun(['eval', '--checkpoint', run, '--json', '--cuts', '5']);
  assert.equal(e.status, 0, e.stderr);
  const ej = JSON.parse(e.stdout) as Report;
  assert.equal(ej.source, 'held-out');
  assert.equal(ej.folder, corpus);
});

test('the GPT\'s per-token losses: one forward pass when a file fits the context; every token scored once otherwise', async () => {
  const served = await loadServingModel(run);
  const model = served.model;
  const P = model.cfg.contextLength;
  const V = model.cfg.vocabSize;
  const rng = new Rng(8);
  const seq = (n: number): number[] => Array.from({ length: n }, () => rng.int(V));
  const docs = [seq(10), seq(P + 1), seq(3 * P + 7), seq(2)];
  const losses = gptTokenLosses(model, docs);
  for (const d of [0, 1, 3]) {
    const s = docs[d]!;
    const n = s.length - 1;
    model.forward(s, null, 1, n);
    const logits = model.logitsView();
    for (let t = 0; t < n; t++) {
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]!);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[t * V + v]! - max);
      const ref = Math.log(z) + max - logits[t * V + s[t + 1]!]!;
      assert.ok(Math.abs(losses[d]![t]! - ref) < 1e-4, `doc ${d} token ${t}: ${losses[d]![t]} vs ${ref}`);
    }
  }
  const long = losses[2]!;
  assert.equal(long.length, 3 * P + 6);
  for (let t = 0; t < long.length; t++) assert.ok(long[t]! > 0 && Number.isFinite(long[t]!), `token ${t} not scored`);
});

test('the served model carries the n-gram companion: built from train.bin, its weights fitted on val.bin (reproduced here)', async () => {
  const served = await loadServingModel(run);
  assert.ok(served.counts !== undefined, served.countsSkipped);
  const tok = served.tokenizer;
  const trainTokens = tokensFromBytes(readFileSync(join(run, 'data', 'train.bin')));
  const { kn, cache } = trainNgram(trainTokens, tok.vocabSize, tok.eotId);
  assert.deepEqual(served.counts.models.cache, cache);
  // The slow path: all fit documents at once, in one synchronous call per model, then the EM fit
  // of the GPT's share λ and of the copy model's share μ (against the GPT + n-gram mixture).
  const docs = fitDocuments(tokensFromBytes(readFileSync(join(run, 'data', 'val.bin'))), tok.eotId);
  const g = gptTokenLosses(served.model, docs).flatMap((x) => Array.from(x, (l) => Math.exp(-l)));
  const k = ngramTokenScores(new NgramSession(kn, cache), docs);
  const c = copyTokenScores(new CopySession(new CopyCorpus(trainTokens, tok.eotId), tok.eotId), docs);
  const refAll = fitServedWeights({
    pGpt: g, pNgram: k.flatMap((x) => Array.from(x.nll, (l) => Math.exp(-l))), bucket: k.flatMap((x) => Array.from(x.bucket)),
    pCopy: c.flatMap((x) => Array.from(x.p)), copyBucket: c.flatMap((x) => Array.from(x.bucket)),
  }, kn.order);
  const w = served.counts.weights;
  assert.equal(w.mixture.weights.length, 16);
  w.mixture.weights.forEach((w, b) => assert.ok(Math.abs(w - refAll.mixture.weights[b]!) < 1e-6, `bucket ${b}: ${w} vs ${refAll.mixture.weights[b]}`));
  assert.equal(w.copy.weights[0], 0, 'no match: the copy model has no say');
  w.copy.weights.forEach((w, b) => assert.ok(Math.abs(w - refAll.copy.weights[b]!) < 1e-6, `copy bucket ${b}: ${w} vs ${refAll.copy.weights[b]}`));
  // Without the run's data (an imported model) the GPT serves alone, and says why.
  const bare = join(tmp, 'bare');
  mkdirSync(bare);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) writeFileSync(join(bare, f), readFileSync(join(run, f)));
  const alone = await loadServingModel(bare);
  assert.equal(alone.counts, undefined);
  assert.equal(alone.decoder('counts'), null, 'no counts mode without the run\'s data');
  assert.ok(alone.decoder('served') !== null && !alone.decoder('served')!.followsHistory, 'served = the GPT alone');
  // Damaged training data (ids outside the vocabulary): the GPT still serves, with the reason.
  const damaged = join(tmp, 'damaged');
  mkdirSync(join(damaged, 'data'), { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'trainer_state.json']) writeFileSync(join(damaged, f), readFileSync(join(run, f)));
  for (const f of ['meta.json', 'tokenizer.json', 'val.bin']) writeFileSync(join(damaged, 'data', f), readFileSync(join(run, 'data', f)));
  writeFileSync(join(damaged, 'data', 'train.bin'), Buffer.from(new Uint16Array(5000).fill(65535).buffer));
  const hurt = await loadServingModel(damaged);
  assert.equal(hurt.counts, undefined);
  assert.match(hurt.countsSkipped ?? '', /n-gram model failed: token id 65535/);
  assert.match(alone.countsSkipped ?? '', /no training data/);
});

test('typing: the n-gram and copy models replay only what changed, and suggest exactly what a fresh start would', async () => {
  const served = await loadServingModel(run);
  assert.ok(served.counts !== undefined);
  const settings = { ...DEFAULT_COMPLETION_SETTINGS, mode: 'line' as const, temperature: 0, minMeanLogProb: -Infinity };
  const opts = { useCache: false, reuseSuggestions: false };
  const shared = new CompletionEngine(() => served, settings, opts);
  const meta = JSON.parse(readFileSync(join(run, 'data', 'meta.json'), 'utf8')) as { val_files: string[] };
  const texts = meta.val_files.slice(0, 2).map((f) => readFileSync(join(corpus, f), 'utf8'));
  // Typing through a line of one file, a jump to another file, then back.
  const requests: { text: string; offset: number }[] = [];
  const a = texts[0]!, b = texts[1] ?? texts[0]!;
  const start = a.indexOf('\n', Math.floor(a.length / 2)) + 1;
  for (let k = 0; k < 12; k++) requests.push({ text: a, offset: start + k });
  requests.push({ text: b, offset: Math.floor(b.length / 3) }, { text: a, offset: start + 3 });
  for (const r of requests) {
    const got = (await shared.complete({ uri: 'u', ...r }, () => false)).text;
    // Fresh sessions: nothing told before, everything replayed.
    const freshModel = assembleServedModel(served.session, served.counts, served.tokenizer.vocabSize, { mode: 'served' });
    const fresh: CompletionModel = { ...served, decoder: () => freshModel };
    const want: string = (await new CompletionEngine(() => fresh, settings, opts).complete({ uri: 'v', ...r }, () => false)).text;
    assert.equal(got, want, `at ${r.offset}`);
  }
});
