// `workspace-lm complete` prints exactly what the editor would suggest: the same checkpoint
// served by `workspace-lm serve --stdio` to an LSP client and asked by the CLI, on the same texts,
// in every model mode (served, gpt, counts) — with the editor's default confidence gate, so
// "nothing to show" must agree too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import type { ModelStatusParams } from '../src/shared/protocol';
import { Rng } from '../src/ml/rng';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'wlm-parity-'));
const corpus = join(tmp, 'corpus');
const run = join(tmp, 'run');

/** Code-like files with repeats the count models can copy and the GPT can learn. */
function jsFile(rng: Rng, i: number): string {
  const names = ['alpha', 'beta', 'gamma', 'delta', 'omega'];
  let s = '';
  for (let k = 0; k < 30; k++) {
    const n = names[rng.int(names.length)]!;
    s += `function ${n}${i % 3}(x) {\n  const ${n} = x * ${rng.int(9)};\n  return ${n} + ${k};\n}\n`;
  }
  return s;
}

let server: ChildProcessWithoutNullStreams;
let conn: MessageConnection;

before(async () => {
  mkdirSync(corpus);
  const rng = new Rng(11);
  for (let i = 0; i < 14; i++) writeFileSync(join(corpus, `f${i}.js`), jsFile(rng, i));
  const train = spawnSync(process.execPath, [cli, 'train', corpus, '--preset', 'tiny', '--max-steps', '120', '--out', run, '--json'], { encoding: 'utf8' });
  assert.equal(train.status, 0, train.stderr);
  server = spawn(process.execPath, [cli, 'serve', '--stdio', '--checkpoint', run, '--poll-ms', '100']);
  server.stderr.on('data', () => undefined);
  conn = createMessageConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
  const ready = new Promise<void>((resolve) => {
    conn.onNotification('workspaceLm/modelStatus', (s: ModelStatusParams) => { if (s.state === 'ready') resolve(); });
  });
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: pathToFileURL(corpus).href, workspaceFolders: null, capabilities: { textDocument: { inlineCompletion: {} } } });
  await conn.sendNotification('initialized', {});
  await ready;
});

after(async () => {
  try {
    await conn.sendRequest('shutdown');
    await conn.sendNotification('exit');
  } catch {
    // already gone
  }
  conn?.dispose();
  server?.kill();
});

let version = 0;

test('complete --model M equals the language server\'s suggestion with the setting model: M', async () => {
  const rng = new Rng(5);
  // Cuts inside new files and inside a training file (whose own training copy the copy model must leave out, in both).
  const texts: { file: string; text: string }[] = [];
  for (let k = 0; k < 8; k++) {
    const body = jsFile(rng, 20 + k);
    const cut = body.indexOf('\n', 40 + rng.int(body.length - 80)) + 1 + rng.int(12);
    texts.push({ file: join(corpus, k < 6 ? `new${k}.js` : `f${k}.js`), text: body.slice(0, cut) });
  }
  texts.push({ file: join(corpus, 'empty.js'), text: '' });
  let nonEmpty = 0;
  for (const model of ['served', 'gpt', 'counts'] as const) {
    await conn.sendNotification('workspaceLm/updateSettings', { model, debounceMs: 0 });
    for (const { file, text } of texts) {
      const uri = pathToFileURL(file).href;
      await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'javascript', version: ++version, text } });
      const lines = text.split('\n');
      const items = await conn.sendRequest('textDocument/inlineCompletion', {
        textDocument: { uri }, position: { line: lines.length - 1, character: lines[lines.length - 1]!.length }, context: { triggerKind: 1 },
      }) as { insertText: string }[] | null;
      await conn.sendNotification('textDocument/didClose', { textDocument: { uri } });
      const editor = items?.[0]?.insertText ?? '';
      const r = spawnSync(process.execPath, [cli, 'complete', '--checkpoint', run, '--model', model, '--file', file], { encoding: 'utf8', input: text });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, editor + '\n', `--model ${model}, ${file} at ${text.length}`);
      if (editor !== '') nonEmpty++;
    }
  }
  assert.ok(nonEmpty >= 6, `only ${nonEmpty} of ${3 * texts.length} requests had a suggestion: the comparison would prove little`);
});
