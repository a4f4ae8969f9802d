// Training through the language server, as the extension drives it: start, watch the status,
// pause (steps stop), resume, finish, the snapshot for a reopened sidebar, and the new model
// picked up for completions.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { DidOpenTextDocumentNotification, InitializedNotification, InitializeRequest, InlineCompletionRequest } from 'vscode-languageserver-protocol';
import {
  DeleteModelRequest, ModelStatusNotification, ModelStatusParams, PauseTrainingRequest, ResumeTrainingRequest, StartTrainingRequest, TrainingSnapshotRequest,
  TrainingStatus, TrainingStatusNotification, UpdateSettingsNotification,
} from '../src/shared/protocol';

const root = join(__dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'wlm-lsp-train-'));
const workspace = join(tmp, 'ws');
const outDir = join(tmp, 'storage', 'run');
mkdirSync(workspace);
for (const f of readdirSync(join(root, 'src', 'ml'))) {
  if (f.endsWith('.ts')) writeFileSync(join(workspace, f), readFileSync(join(root, 'src', 'ml', f)));
}

const server = spawn(process.execPath, [join(root, 'dist', 'cli.js'), 'serve', '--stdio', '--poll-ms', '100']);
server.stderr.on('data', () => undefined);
const conn = createMessageConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
const statuses: TrainingStatus[] = [];
const models: ModelStatusParams[] = [];
conn.onNotification(TrainingStatusNotification, (s) => { statuses.push(s); });
conn.onNotification(ModelStatusNotification, (s) => { models.push(s); });
conn.listen();

after(() => {
  conn.dispose();
  server.kill();
});

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(statuses[statuses.length - 1])}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('start, pause, resume and finish a run over LSP; the snapshot and the served model follow', async () => {
  await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid, rootUri: null, workspaceFolders: null, capabilities: {},
    initializationOptions: { modelDir: outDir },
  });
  await conn.sendNotification(InitializedNotification.type, {});
  await until('no-model status', () => models.find((m) => m.state === 'no-model'));

  const started = await conn.sendRequest(StartTrainingRequest, { folders: [workspace], outDir, preset: 'tiny', maxSteps: 400, threads: 1 });
  assert.equal(started.state, 'preparing');
  const again = await conn.sendRequest(StartTrainingRequest, { folders: [workspace], outDir, preset: 'tiny' });
  assert.match(again.message, /already/);
  await until('some training steps', () => statuses.find((s) => s.state === 'training' && (s.step ?? 0) >= 5));
  assert.ok(statuses.some((s) => s.state === 'preparing' && s.phase === 'tokenizer'), 'reported the tokenizer phase');

  await conn.sendRequest(PauseTrainingRequest);
  const paused = await until('paused', () => statuses.find((s) => s.state === 'paused'));
  await new Promise((r) => setTimeout(r, 600));
  const later = statuses[statuses.length - 1]!;
  assert.equal(later.state, 'paused');
  assert.equal(later.step, paused.step, 'no steps while paused');

  await conn.sendRequest(ResumeTrainingRequest);
  await until('steps after resume', () => statuses.find((s) => s.state === 'training' && (s.step ?? 0) > paused.step!));
  const done = await until('ready', () => statuses.find((s) => s.state === 'ready'), 120_000);
  assert.ok(done.totalSteps !== undefined && done.totalSteps > 20);
  assert.equal(done.step, done.totalSteps);
  assert.ok(statuses.some((s) => (s.newPoints?.length ?? 0) > 0), 'status updates carry chart points');

  const snap = await conn.sendRequest(TrainingSnapshotRequest, { outDir });
  assert.equal(snap.history.length, done.totalSteps);
  assert.ok(snap.evals.length >= 1);
  assert.ok(snap.history[snap.history.length - 1]!.loss < snap.history[0]!.loss - 1, 'the loss fell');
  assert.ok(snap.corpus !== undefined && snap.corpus.files > 5);
  assert.equal(snap.model?.nLayer, 2);

  // The finished checkpoint is hot-swapped in (after any intermediate ones).
  const ready = await until('final model served', () => models.find((m) => m.state === 'ready' && m.model?.step === done.totalSteps), 20_000);
  assert.ok(ready.model!.params > 100_000);
});

test('Delete Model: the server stops serving the model at once and removes its folder; completions answer nothing', async () => {
  const uri = pathToFileURL(join(workspace, 'scratch.ts')).href;
  const text = 'export function ';
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'typescript', version: 1, text } });
  const ask = () => conn.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line: 0, character: text.length }, context: { triggerKind: 1 } });
  await conn.sendNotification(UpdateSettingsNotification, { minMeanLogProb: -100, debounceMs: 0 });
  const before = await ask();
  assert.ok(Array.isArray(before) && before.length > 0, 'a suggestion before the delete');
  const seen = models.length;
  await conn.sendRequest(DeleteModelRequest, { runDir: outDir });
  // The no-model status was sent before the request returned, and nothing is served from here on.
  assert.ok(models.slice(seen).some((m) => m.state === 'no-model' && /deleted/.test(m.message)), JSON.stringify(models.slice(seen)));
  assert.equal(existsSync(outDir), false);
  assert.equal(await ask(), null);
});
