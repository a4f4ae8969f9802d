// Outgrowing one machine, end to end: a tiny run trained by the CLI is exported as a PyTorch
// bundle, trained further by the bundle's own train_torch.py with DDP (2 processes, gloo, CPU),
// imported back, served and completed from; PyTorch must start from our loss and end with our
// logits. Bad model folders must be refused with errors that name the file.
// The PyTorch parts need Debian's python3-torch (CI installs it); without it they FAIL, saying
// what to install, unless WORKSPACE_LM_SKIP_TORCH=1 (for a developer without torch; ignored
// when CI is set) skips them.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, AddressInfo } from 'node:net';
import { loadCheckpoint } from '../src/run/checkpoint';
import { validationBatches } from '../src/ml/dataset';
import { decodeSafetensors, encodeSafetensors } from '../src/ml/safetensors';
import { assertClose } from './helpers';

const root = join(__dirname, '..');
const cli = join(root, 'dist', 'cli.js');
const corpus = join(root, 'src');

/** A python3 that can import torch, numpy and gloo: Debian's (/usr/bin/python3) or the one on PATH; else why not. */
function findTorchPython(): { python: string; missing: null } | { python: null; missing: string } {
  const errors: string[] = [];
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch, numpy, torch.distributed as d; assert d.is_gloo_available(), "no gloo backend"'], { encoding: 'utf8' });
    if (r.status === 0) return { python: py, missing: null };
    errors.push(`${py}: ${r.error?.message ?? r.stderr.trim().split('\n').pop()}`);
  }
  return { python: null, missing: `python3 cannot import torch, numpy and torch.distributed with gloo (${errors.join('; ')}): apt-get install python3-torch python3-numpy libopenblas0-pthread (.ci/run installs them)` };
}
const torch = findTorchPython();
const py = torch.python;
const needsTorch = { skip: torch.missing !== null && process.env.WORKSPACE_LM_SKIP_TORCH === '1' && !process.env.CI ? `WORKSPACE_LM_SKIP_TORCH=1 and ${torch.missing}` : false } as const;
/** First line of every PyTorch test: without torch the test fails here, saying what to install. */
const requireTorch = (): void => assert.ok(py !== null, `${torch.missing}; ${process.env.CI ? 'CI is set, so WORKSPACE_LM_SKIP_TORCH does not apply' : 'to skip the PyTorch tests instead, set WORKSPACE_LM_SKIP_TORCH=1'}`);

type Ev = Record<string, unknown> & { event: string };
const events = (stdout: string): Ev[] => stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev);

function wlm(args: string[], input?: string) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input, maxBuffer: 64 << 20 });
}

/** Runs a script of the bundle with the torch python; resolves with its output (async: the two DDP workers need the event loop free). */
function python(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(py!, args, { cwd: opts.cwd, env: { ...process.env, OMP_NUM_THREADS: '1', ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const closeRel = (a: number, b: number, tol: number, what: string): void => {
  assert.ok(Math.abs(a - b) <= tol * Math.abs(b), `${what}: ${a} vs ${b} (relative tolerance ${tol})`);
};

const tmp = mkdtempSync(join(tmpdir(), 'wlm-export-'));
const project = join(tmp, 'project'); // a "folder" whose run lives in .workspace-lm/
const runDir = join(project, '.workspace-lm');
const bundle = join(tmp, 'bundle');
const torchOut = join(tmp, 'torch-out');
let trainerState: { step: number; lastLoss: number; lastValLoss: number; train: { batchSize: number; evalBatches: number }; files: Record<string, string> };
let ourValLoss = NaN;
let ddp: Ev[] = [];
after(() => rmSync(tmp, { recursive: true, force: true }));

test('export: a folder\'s run becomes a self-contained bundle (data, tokenizer, config, weights, scripts, README)', () => {
  mkdirSync(project, { recursive: true });
  const t = wlm(['train', corpus, '--preset', 'tiny', '--max-steps', '30', '--out', runDir, '--json']);
  assert.equal(t.status, 0, t.stderr);
  trainerState = JSON.parse(readFileSync(join(runDir, 'trainer_state.json'), 'utf8'));
  assert.equal(trainerState.step, 30);

  const r = wlm(['export', project, '--to', bundle, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const ev = events(r.stdout)[0]!;
  assert.equal(ev.runDir, runDir, 'a folder resolves to its .workspace-lm run');
  for (const f of ['train.bin', 'val.bin', 'meta.json', 'tokenizer.json', 'config.json', 'train_config.json', 'model.safetensors', 'train_torch.py', 'gpt2_torch.py', 'README.md']) {
    assert.ok(existsSync(join(bundle, f)), `bundle misses ${f}`);
  }
  // The data and the weights are the run's, byte for byte.
  assert.deepEqual(readFileSync(join(bundle, 'train.bin')), readFileSync(join(runDir, 'data', 'train.bin')));
  assert.deepEqual(readFileSync(join(bundle, 'val.bin')), readFileSync(join(runDir, 'data', 'val.bin')));
  assert.equal(sha256(join(bundle, 'model.safetensors')), trainerState.files['model.safetensors']);
  assert.equal(sha256(join(bundle, 'config.json')), trainerState.files['config.json']);
  assert.deepEqual(readFileSync(join(bundle, 'train_torch.py')), readFileSync(join(root, 'scripts', 'train_torch.py')));
  const tc = JSON.parse(readFileSync(join(bundle, 'train_config.json'), 'utf8'));
  assert.equal(tc.val_loss, trainerState.lastValLoss);
  assert.equal(tc.batch_size, trainerState.train.batchSize);
  const readme = readFileSync(join(bundle, 'README.md'), 'utf8');
  for (const launch of ['python3 train_torch.py --out out', 'torchrun --standalone --nproc-per-node 8 train_torch.py', 'python3 train_torch.py --nproc-per-node 8', '--nnodes 2 --node-rank 1 --master-addr', 'workspace-lm import out']) {
    assert.ok(readme.includes(launch), `README.md lacks "${launch}"`);
  }

  // --no-weights (re-exported over the bundle: its old model.safetensors goes) and a run dir path.
  const noWeights = join(tmp, 'bundle-no-weights');
  cpSync(bundle, noWeights, { recursive: true });
  const n = wlm(['export', runDir, '--to', noWeights, '--no-weights', '--json']);
  assert.equal(n.status, 0, n.stderr);
  assert.ok(!existsSync(join(noWeights, 'model.safetensors')), '--no-weights left a model.safetensors');
  assert.equal(JSON.parse(readFileSync(join(noWeights, 'train_config.json'), 'utf8')).val_loss, null);

  // Clear errors: no run there; a folder with someone else's files.
  const none = wlm(['export', corpus, '--to', join(tmp, 'x')]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /is neither a workspace-lm run .* train first/);
  const busy = wlm(['export', project, '--to', join(root, 'src')]);
  assert.equal(busy.status, 1);
  assert.match(busy.stderr, /src is not empty .*export into a new folder/);
  const usage = wlm(['export', project]);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--to DIR/);
});

test('continuing in PyTorch starts at our loss: train_torch.py --eval-only on the bundle = our validation loss', needsTorch, async () => {
  requireTorch();
  // Our side, computed here (not only read from trainer_state.json): the run's model on the
  // run's fixed validation windows, with the TypeScript engine.
  const ck = await loadCheckpoint(runDir);
  const valBytes = readFileSync(join(runDir, 'data', 'val.bin'));
  const val = new Uint16Array(valBytes.buffer.slice(valBytes.byteOffset, valBytes.byteOffset + valBytes.byteLength));
  const T = ck.model.cfg.contextLength;
  const B = trainerState.train.batchSize;
  const batches = validationBatches(val, B, T, trainerState.train.evalBatches);
  let sum = 0;
  for (const b of batches) sum += ck.model.evaluate(b.ids, b.targets, B, T);
  ourValLoss = sum / batches.length;
  closeRel(ourValLoss, trainerState.lastValLoss, 1e-6, 'our evaluation vs the run\'s recorded val loss');

  const r = await python(['train_torch.py', '--eval-only', '--json'], { cwd: bundle });
  assert.equal(r.status, 0, r.stderr);
  const ev = events(r.stdout).find((e) => e.event === 'eval')!;
  assert.equal(ev.init, 'bundle');
  assert.equal(ev.batches, batches.length);
  closeRel(ev.val_loss as number, ourValLoss, 1e-5, 'PyTorch\'s val loss of our weights vs ours');

  // The check has teeth: a fresh initialisation is near ln(V), far above the trained model.
  const lnV = Math.log(ck.model.cfg.vocabSize);
  const fresh = await python(['train_torch.py', '--eval-only', '--from-scratch', '--json'], { cwd: bundle });
  assert.equal(fresh.status, 0, fresh.stderr);
  const freshLoss = events(fresh.stdout).find((e) => e.event === 'eval')!.val_loss as number;
  assert.ok(Math.abs(freshLoss - lnV) < 0.1, `fresh model's loss ${freshLoss} is not near ln(V) = ${lnV}`);
  assert.ok(ourValLoss < lnV - 0.5, `the exported model (${ourValLoss}) is not clearly better than a fresh one (${lnV})`);
});

test('DDP: train_torch.py --nproc-per-node 2 (gloo, CPU) continues from our weights and writes our checkpoint layout', needsTorch, async () => {
  requireTorch();
  const r = await python(['train_torch.py', '--nproc-per-node', '2', '--max-steps', '40', '--batch-size', '4', '--eval-every', '20', '--checkpoint-every', '20', '--out', torchOut, '--json'], { cwd: bundle });
  assert.equal(r.status, 0, r.stderr);
  ddp = events(r.stdout);
  const start = ddp.find((e) => e.event === 'start')!;
  assert.equal(start.world_size, 2);
  assert.equal(start.init, 'bundle');
  assert.equal(start.global_batch, 8);
  const evals = ddp.filter((e) => e.event === 'eval');
  assert.deepEqual(evals.map((e) => e.step), [0, 20, 40]);
  // Before the first update, every process holds our weights: the loss is ours (the DDP
  // evaluation shares the batches out across the two processes and all-reduces).
  closeRel(evals[0]!.val_loss as number, trainerState.lastValLoss, 1e-5, 'step-0 val loss in PyTorch DDP vs our run');
  const steps = ddp.filter((e) => e.event === 'step');
  assert.equal(steps.length, 40);
  const lnV = Math.log(1024);
  assert.ok((steps[0]!.loss as number) < lnV - 0.5, `first PyTorch step's loss ${steps[0]!.loss} looks like a re-initialised model (ln V = ${lnV})`);
  assert.ok((evals[2]!.val_loss as number) < (evals[0]!.val_loss as number), 'training in PyTorch did not lower the validation loss');
  assert.deepEqual(ddp.filter((e) => e.event === 'checkpoint').map((e) => e.step), [20, 40]);
  assert.deepEqual(readdirSync(join(torchOut, 'checkpoints')).sort(), ['step-0000020', 'step-0000040']);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'torch_state.json']) assert.ok(existsSync(join(torchOut, f)), `top-level ${f}`);
  assert.deepEqual(readFileSync(join(torchOut, 'tokenizer.json')), readFileSync(join(bundle, 'tokenizer.json')));
});

test('DDP equals one process with the global batch; the torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK) works too', needsTorch, async () => {
  requireTorch();
  const common = ['train_torch.py', '--max-steps', '3', '--eval-every', '0', '--checkpoint-every', '1000', '--json'];
  const single = await python([...common, '--batch-size', '8', '--out', join(tmp, 'single')], { cwd: bundle });
  assert.equal(single.status, 0, single.stderr);
  // What torchrun does, by hand (its launcher is broken on Debian's torch 1.13 + Python 3.11).
  const port = await new Promise<string>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(String(p)));
    });
  });
  const env = (rank: number): NodeJS.ProcessEnv => ({ RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: '2', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port });
  const launched = await Promise.all([0, 1].map((rank) => python([...common, '--batch-size', '4', '--out', join(tmp, 'launched')], { cwd: bundle, env: env(rank) })));
  for (const l of launched) assert.equal(l.status, 0, l.stderr);
  assert.equal(events(launched[1]!.stdout).length, 0, 'only rank 0 reports');
  const losses = (out: string): number[] => events(out).filter((e) => e.event === 'step').map((e) => e.loss as number);
  const a = losses(single.stdout);
  const b = losses(launched[0]!.stdout);
  assert.equal(a.length, 3);
  for (let i = 0; i < 3; i++) closeRel(b[i]!, a[i]!, 1e-5, `step ${i + 1}: torchrun-style 2x4 vs one process x8`);
  // The mp.spawn run above had another schedule (40 steps); its first batch and weights are the same.
  closeRel(ddp.find((e) => e.event === 'step')!.loss as number, a[0]!, 1e-5, 'step 1: mp.spawn 2x4 vs one process x8');
});

test('train_torch.py --resume: the optimizer comes back from safetensors exactly, and a pickle in --out is never unpickled', needsTorch, async () => {
  requireTorch();
  const common = ['train_torch.py', '--max-steps', '4', '--checkpoint-every', '2', '--eval-every', '0', '--batch-size', '4', '--json'];
  const through = join(tmp, 'resume-through');
  const full = await python([...common, '--out', through], { cwd: bundle });
  assert.equal(full.status, 0, full.stderr);
  const lossAt = (out: string): Map<number, number> => new Map(events(out).filter((e) => e.event === 'step').map((e) => [e.step as number, e.loss as number]));
  const want = lossAt(full.stdout);
  assert.deepEqual([...want.keys()], [1, 2, 3, 4]);
  const ckpt = join(through, 'checkpoints', 'step-0000002');
  assert.ok(existsSync(join(ckpt, 'torch_optimizer.safetensors')) && !existsSync(join(ckpt, 'optimizer.pt')), 'the optimizer is stored as safetensors');
  // Resumed from step 2: steps 3 and 4 are the uninterrupted run's (same moments, same batches).
  const resumed = join(tmp, 'resume-from-2');
  cpSync(through, resumed, { recursive: true });
  rmSync(join(resumed, 'checkpoints', 'step-0000004'), { recursive: true });
  const r = await python([...common, '--resume', '--out', resumed], { cwd: bundle });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(events(r.stdout).find((e) => e.event === 'start')!.start_step, 2);
  const got = lossAt(r.stdout);
  assert.deepEqual([...got.keys()], [3, 4]);
  for (const s of [3, 4]) closeRel(got.get(s)!, want.get(s)!, 1e-5, `step ${s}: resumed vs uninterrupted`);

  // A hostile --out: the newest checkpoint carries an optimizer.pt whose unpickling runs a command.
  const hostile = join(tmp, 'resume-hostile');
  cpSync(through, hostile, { recursive: true });
  const marker = join(tmp, 'pickle-ran');
  const newest = join(hostile, 'checkpoints', 'step-0000004');
  rmSync(join(newest, 'torch_optimizer.safetensors'));
  const make = await python(['-c', [
    'import os, sys, torch',
    'class Payload:',
    '    def __reduce__(self): return (os.system, ("touch " + sys.argv[2],))',
    'torch.save({"optimizer": Payload(), "scaler": {}}, sys.argv[1])',
  ].join('\n'), join(newest, 'optimizer.pt'), marker], { cwd: tmp });
  assert.equal(make.status, 0, make.stderr);
  const h = await python([...common, '--max-steps', '6', '--resume', '--out', hostile], { cwd: bundle });
  assert.ok(!existsSync(marker), 'train_torch.py --resume unpickled optimizer.pt (and ran the command in it)');
  assert.notEqual(h.status, 0);
  assert.match(h.stderr, /optimizer\.pt is a pickle written by an older train_torch\.py, which --resume does not load/);
});

test('import: the PyTorch result becomes the served model; complete works; its logits equal PyTorch\'s', needsTorch, async () => {
  requireTorch();
  const before = readdirSync(join(runDir, 'checkpoints')).sort();
  const r = wlm(['import', torchOut, '--out', runDir, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const ev = events(r.stdout)[0]!;
  assert.equal(ev.source, join(torchOut, 'checkpoints', 'step-0000040'), 'the newest checkpoint of the folder');
  assert.equal(ev.checkpointDir, join(runDir, 'checkpoints', 'step-0000031'), 'one past the run\'s newest step');
  assert.equal(ev.tokenizerMatchesData, true);
  assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).sort(), [...before, 'step-0000031']);
  const ckDir = join(runDir, 'checkpoints', 'step-0000031');
  assert.ok(existsSync(join(ckDir, 'imported.json')));
  assert.ok(!existsSync(join(ckDir, 'trainer_state.json')) && !existsSync(join(runDir, 'trainer_state.json')), 'an imported model has no trainer state');

  // What the loaders see: the imported weights, exactly the float32 values PyTorch wrote.
  const ck = await loadCheckpoint(runDir);
  assert.equal(ck.dir, ckDir);
  assert.equal(ck.state, null);
  assert.deepEqual(ck.rejected, []);
  const torchModel = decodeSafetensors(readFileSync(join(torchOut, 'model.safetensors')));
  for (const t of ck.model.layout) {
    assert.deepEqual(Array.from(ck.model.params.subarray(t.offset, t.offset + t.size)), Array.from(torchModel.tensors.get(t.name)!.data as Float32Array), t.name);
  }
  const info = wlm(['info', '--checkpoint', runDir, '--json']);
  assert.equal(info.status, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).checkpoint, ckDir);

  const c = wlm(['complete', '--checkpoint', runDir, '--max-tokens', '24'], 'export function ');
  assert.equal(c.status, 0, c.stderr);
  assert.ok(c.stdout.length > 1, `complete printed nothing: ${JSON.stringify(c.stdout)}`);

  // Logits: ours (TypeScript, from the run dir) vs PyTorch's reader on the run's top-level mirror.
  const ids = Array.from(ck.tokenizer.encodeBytes(new TextEncoder().encode('export async function main(argv: string[]) {\n  const x = 1;')));
  assert.ok(ids.length > 4 && ids.length <= ck.model.cfg.contextLength);
  ck.model.forward(ids, null, 1, ids.length);
  const ours = Float32Array.from(ck.model.logitsView().subarray(0, ids.length * ck.model.cfg.vocabSize));
  for (const dir of [runDir, torchOut]) {
    const p = await python([join(root, 'scripts', 'gpt2_torch.py'), 'logits', '--checkpoint', dir, '--ids', ids.join(',')], { cwd: tmp });
    assert.equal(p.status, 0, p.stderr);
    const theirs = (JSON.parse(p.stdout) as { logits: number[][] }).logits.flat();
    assertClose(ours, theirs, 1e-5, `logits: ours vs PyTorch reading ${dir}`);
  }
});

test('import refuses bad model folders with an error naming the file, and leaves the run untouched', async () => {
  // A valid model folder to break: the run's own step-30 weights (so this runs without torch too).
  const good = join(tmp, 'good-model');
  mkdirSync(good);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) cpSync(join(runDir, 'checkpoints', 'step-0000030', f), join(good, f));
  const variant = (name: string, change: (dir: string) => void): string => {
    const d = join(tmp, name);
    cpSync(good, d, { recursive: true });
    change(d);
    return d;
  };
  const editConfig = (d: string, patch: Record<string, unknown>): void => {
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
  };
  const target = join(tmp, 'target-run');
  const ok = wlm(['import', good, '--out', target]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /now the served model/);
  const snapshot = (): string => JSON.stringify(readdirSync(target, { recursive: true }).sort());
  const before = snapshot();

  const cases: [string, string, RegExp][] = [
    ['missing model', variant('no-model', (d) => rmSync(join(d, 'model.safetensors'))), /missing .*no-model\/model\.safetensors/],
    ['missing tokenizer', variant('no-tokenizer', (d) => rmSync(join(d, 'tokenizer.json'))), /missing .*no-tokenizer\/tokenizer\.json/],
    ['missing config', variant('no-config', (d) => rmSync(join(d, 'config.json'))), /missing .*no-config\/config\.json/],
    ['shape mismatch', variant('longer-context', (d) => editConfig(d, { n_positions: 128, n_ctx: 128 })),
      /longer-context\/model\.safetensors: tensor transformer\.wpe\.weight has shape \[64, 64\], config\.json implies \[128, 64\]/],
    ['other vocab size', variant('other-vocab', (d) => editConfig(d, { vocab_size: 2048 })),
      /other-vocab\/tokenizer\.json: tokenizer has 1024 tokens but config\.json says vocab_size 2048/],
    ['NaN weights', variant('nan', (d) => {
      const file = join(d, 'model.safetensors');
      const st = decodeSafetensors(readFileSync(file));
      const w = st.tensors.get('transformer.h.1.mlp.c_fc.weight')!.data as Float32Array;
      w[17] = NaN;
      writeFileSync(file, encodeSafetensors([...st.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data }))));
    }), /nan\/model\.safetensors: tensor transformer\.h\.1\.mlp\.c_fc\.weight has 1 NaN\/Inf value/],
    ['truncated weights', variant('truncated', (d) => {
      const file = join(d, 'model.safetensors');
      writeFileSync(file, readFileSync(file).subarray(0, 1000));
    }), /truncated\/model\.safetensors/],
    ['not a folder', join(tmp, 'does-not-exist'), /folder not found/],
  ];
  for (const [what, dir, message] of cases) {
    const r = wlm(['import', dir, '--out', target]);
    assert.equal(r.status, 1, `${what}: exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr, /^\nworkspace-lm: error: cannot import /, what);
    assert.match(r.stderr, message, what);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: a one-line error`);
  }
  assert.equal(snapshot(), before, 'a refused import changed the run');
});
