// The language server as an editor sees it: `workspace-lm serve --stdio` driven over JSON-RPC by a
// real client (vscode-jsonrpc), serving a checkpoint trained in this test on a corpus with a
// strongly repeated pattern.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter, CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import type { ModelStatusParams } from '../src/shared/protocol';

const root = join(__dirname, '..');
const cli = join(root, 'dist', 'cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'wlm-lsp-'));
const corpus = join(tmp, 'corpus');
const run = join(tmp, 'run');

// The pattern the model must learn, and the prompt that asks for it.
const PATTERN = 'function greet(name) {\n  return "Hello, " + name + "!";\n}\n';
const PROMPT = 'function greet(name) {\n  return "Hel';
const EXPECTED = 'lo, " + name + "!";';

let server: ChildProcessWithoutNullStreams;
let conn: MessageConnection;
const statuses: ModelStatusParams[] = [];

function fileText(i: number): string {
  const fillers = ['let a = 1;', 'const b = a * 2;', 'if (b > 3) { a = 0; }', 'console.log(a, b);'];
  let s = '';
  for (let k = 0; k < 40; k++) s += `${fillers[(i + k) % fillers.length]}\n${PATTERN}\n`;
  return s;
}

before(async () => {
  mkdirSync(corpus);
  for (let i = 0; i < 12; i++) writeFileSync(join(corpus, `greet${i}.js`), fileText(i));
  const train = spawnSync(process.execPath, [cli, 'train', corpus, '--preset', 'tiny', '--epochs', '40', '--max-steps', '300', '--out', run, '--json'], { encoding: 'utf8' });
  assert.equal(train.status, 0, train.stderr);
  server = spawn(process.execPath, [cli, 'serve', '--stdio', '--checkpoint', run, '--poll-ms', '100']);
  server.stderr.on('data', () => undefined);
  conn = createMessageConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
  const ready = new Promise<void>((resolve) => {
    conn.onNotification('workspaceLm/modelStatus', (s: ModelStatusParams) => {
      statuses.push(s);
      if (s.state === 'ready') resolve();
    });
  });
  conn.listen();
  const init = await conn.sendRequest('initialize', {
    processId: process.pid, rootUri: pathToFileURL(corpus).href, workspaceFolders: null,
    capabilities: { textDocument: { inlineCompletion: {} } },
    initializationOptions: { settings: { debounceMs: 0, minMeanLogProb: -10 } },
  }) as { capabilities: Record<string, unknown> };
  assert.ok(init.capabilities['inlineCompletionProvider'], 'advertises inline completions');
  assert.equal(init.capabilities['completionProvider'], undefined, 'no completion fallback when the client has inline completions');
  await conn.sendNotification('initialized', {});
  await ready;
});

after(async () => {
  try {
    await conn.sendRequest('shutdown');
    await conn.sendNotification('exit');
  } catch {
    // the server may already be gone
  }
  conn?.dispose();
  server?.kill();
});

let version = 0;
async function open(name: string, text: string): Promise<string> {
  const uri = pathToFileURL(join(corpus, name)).href;
  await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'javascript', version: ++version, text } });
  return uri;
}

function endOf(text: string): { line: number; character: number } {
  const lines = text.split('\n');
  return { line: lines.length - 1, character: lines[lines.length - 1]!.length };
}

test('inline completion continues the learned pattern', async () => {
  assert.equal(statuses[statuses.length - 1]!.state, 'ready');
  const text = 'let a = 1;\n' + PROMPT;
  const uri = await open('new.js', text);
  const items = await conn.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri }, position: endOf(text), context: { triggerKind: 1 },
  }) as { insertText: string }[] | null;
  assert.ok(items !== null && items.length === 1, 'a suggestion');
  assert.equal(items[0]!.insertText, EXPECTED);
});

test('an auto-closed quote after the cursor is replaced, so accepting gives the learned line', async () => {
  const text = 'let a = 1;\n' + PROMPT + '"';
  const uri = await open('autoclose.js', text);
  const pos = endOf(text);
  const cursor = { line: pos.line, character: pos.character - 1 }; // before the auto-inserted quote
  const items = await conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri }, position: cursor, context: { triggerKind: 1 } }) as { insertText: string; range: { start: unknown; end: { character: number } } }[] | null;
  assert.equal(items?.[0]?.insertText, EXPECTED);
  assert.deepEqual(items?.[0]?.range.start, cursor);
  assert.equal(items?.[0]?.range.end.character, cursor.character + 1);
});

test('typing the suggestion\'s next characters keeps the rest of it', async () => {
  const text = 'let a = 1;\n' + PROMPT + 'lo, ';
  const uri = await open('typing.js', text);
  const items = await conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri }, position: endOf(text), context: { triggerKind: 1 } }) as { insertText: string }[] | null;
  assert.equal(items?.[0]?.insertText, '" + name + "!";');
});

test('a cancelled request returns promptly and the next one is correct', async () => {
  const text = 'const b = a * 2;\n' + PROMPT;
  const uri = await open('cancel.js', text);
  // With a debounce the cancel deterministically arrives before decoding starts (as when typing).
  await conn.sendNotification('workspaceLm/updateSettings', { debounceMs: 200 });
  const source = new CancellationTokenSource();
  const t0 = Date.now();
  const pending = conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri }, position: endOf(text), context: { triggerKind: 1 } }, source.token);
  source.cancel();
  let outcome: unknown;
  try {
    outcome = await pending;
  } catch (e) {
    outcome = e;
  }
  assert.ok(Date.now() - t0 < 2000, 'answered promptly');
  assert.ok(outcome === null || outcome instanceof ResponseError, `cancelled request gave ${JSON.stringify(outcome)}`);
  await conn.sendNotification('workspaceLm/updateSettings', { debounceMs: 0 });
  const items = await conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri }, position: endOf(text), context: { triggerKind: 1 } }) as { insertText: string }[] | null;
  assert.equal(items?.[0]?.insertText, EXPECTED);
});

test('malformed requests get LSP errors or empty results, and the server stays up', async () => {
  const uri = await open('bad.js', 'let a = 1;\n');
  const req = (method: string, params: unknown) => conn.sendRequest(method, params);
  await assert.rejects(req('textDocument/inlineCompletion', { textDocument: { uri }, position: { line: 99, character: 0 }, context: { triggerKind: 1 } }), /outside the document/);
  await assert.rejects(req('textDocument/inlineCompletion', { textDocument: { uri }, position: { line: 'x' } }), /expected/);
  await assert.rejects(req('textDocument/inlineCompletion', null), /expected/);
  assert.equal(await req('textDocument/inlineCompletion', { textDocument: { uri: 'file:///never/opened.js' }, position: { line: 0, character: 0 }, context: { triggerKind: 1 } }), null);
  const untitled = 'untitled:Untitled-1';
  await conn.sendNotification('textDocument/didOpen', { textDocument: { uri: untitled, languageId: 'javascript', version: 1, text: PROMPT } });
  assert.equal(await req('textDocument/inlineCompletion', { textDocument: { uri: untitled }, position: endOf(PROMPT), context: { triggerKind: 1 } }), null);
  const huge = 'x'.repeat(1_100_000) + '\n' + PROMPT;
  const hugeUri = await open('huge.js', huge);
  assert.equal(await req('textDocument/inlineCompletion', { textDocument: { uri: hugeUri }, position: endOf(huge), context: { triggerKind: 1 } }), null);
  const binary = 'a\u0000b\n' + PROMPT;
  const binUri = await open('bin.js', binary);
  assert.equal(await req('textDocument/inlineCompletion', { textDocument: { uri: binUri }, position: endOf(binary), context: { triggerKind: 1 } }), null);
  await assert.rejects(req('workspaceLm/noSuchMethod', {}), /Unhandled method|not found/i);
  // Still serving.
  const text = PROMPT;
  const okUri = await open('after.js', text);
  const items = await req('textDocument/inlineCompletion', { textDocument: { uri: okUri }, position: endOf(text), context: { triggerKind: 1 } }) as { insertText: string }[] | null;
  assert.equal(items?.[0]?.insertText, EXPECTED);
});
