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
import { createMessageConnection, MessageConnection, StreamMessageReader, StreamMessageWriter, CancellationTokenSource, ErrorCodes, ResponseError } from 'vscode-jsonrpc/node';
import {
  DidOpenTextDocumentNotification, ExitNotification, InitializedNotification, InitializeRequest, InlineCompletionItem, InlineCompletionParams, InlineCompletionRequest,
  ShutdownRequest,
} from 'vscode-languageserver-protocol';
import { InitializationOptions, ModelStatusNotification, ModelStatusParams, UpdateSettingsNotification } from '../src/shared/protocol';

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
    conn.onNotification(ModelStatusNotification, (s) => {
      statuses.push(s);
      if (s.state === 'ready') resolve();
    });
  });
  conn.listen();
  const initializationOptions: InitializationOptions = { settings: { debounceMs: 0, minMeanLogProb: -10 } };
  const init = await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid, rootUri: pathToFileURL(corpus).href, workspaceFolders: null,
    capabilities: { textDocument: { inlineCompletion: {} } },
    initializationOptions,
  });
  assert.ok(init.capabilities.inlineCompletionProvider, 'advertises inline completions');
  assert.equal(init.capabilities.completionProvider, undefined, 'no completion fallback when the client has inline completions');
  await conn.sendNotification(InitializedNotification.type, {});
  await ready;
});

after(async () => {
  try {
    await conn.sendRequest(ShutdownRequest.type);
    await conn.sendNotification(ExitNotification.type);
  } catch {
    // the server may already be gone
  }
  conn?.dispose();
  server?.kill();
});

let version = 0;
async function open(name: string, text: string): Promise<string> {
  const uri = pathToFileURL(join(corpus, name)).href;
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'javascript', version: ++version, text } });
  return uri;
}

/** An inline completion request at `position` (trigger kind 1: invoked explicitly). */
function inlineAt(uri: string, position: { line: number; character: number }): InlineCompletionParams {
  return { textDocument: { uri }, position, context: { triggerKind: 1 } };
}

/** The suggestions at `position`: the server answers a list of items (or null: nothing to suggest). */
async function inline(uri: string, position: { line: number; character: number }): Promise<InlineCompletionItem[] | null> {
  const r = await conn.sendRequest(InlineCompletionRequest.type, inlineAt(uri, position));
  assert.ok(r === null || Array.isArray(r), 'a list of items, not an InlineCompletionList');
  return r;
}

function endOf(text: string): { line: number; character: number } {
  const lines = text.split('\n');
  return { line: lines.length - 1, character: lines[lines.length - 1]!.length };
}

test('inline completion continues the learned pattern', async () => {
  assert.equal(statuses[statuses.length - 1]!.state, 'ready');
  const text = 'let a = 1;\n' + PROMPT;
  const uri = await open('new.js', text);
  const items = await inline(uri, endOf(text));
  assert.ok(items !== null && items.length === 1, 'a suggestion');
  assert.equal(items[0]!.insertText, EXPECTED);
});

test('an auto-closed quote after the cursor is replaced, so accepting gives the learned line', async () => {
  const text = 'let a = 1;\n' + PROMPT + '"';
  const uri = await open('autoclose.js', text);
  const pos = endOf(text);
  const cursor = { line: pos.line, character: pos.character - 1 }; // before the auto-inserted quote
  const items = await inline(uri, cursor);
  assert.equal(items?.[0]?.insertText, EXPECTED);
  assert.deepEqual(items?.[0]?.range?.start, cursor);
  assert.equal(items?.[0]?.range?.end.character, cursor.character + 1);
});

test('typing the suggestion\'s next characters keeps the rest of it', async () => {
  const text = 'let a = 1;\n' + PROMPT + 'lo, ';
  const uri = await open('typing.js', text);
  const items = await inline(uri, endOf(text));
  assert.equal(items?.[0]?.insertText, '" + name + "!";');
});

test('a cancelled request is answered with nothing or a cancellation error, and the next one is correct', async () => {
  const text = 'const b = a * 2;\n' + PROMPT;
  const uri = await open('cancel.js', text);
  // With a debounce the cancel deterministically arrives before decoding starts (as when typing).
  await conn.sendNotification(UpdateSettingsNotification, { debounceMs: 200 });
  const source = new CancellationTokenSource();
  const pending = conn.sendRequest(InlineCompletionRequest.type, inlineAt(uri, endOf(text)), source.token);
  source.cancel();
  let outcome: unknown;
  try {
    outcome = await pending;
  } catch (e) {
    outcome = e;
  }
  assert.ok(outcome === null || outcome instanceof ResponseError, `cancelled request gave ${JSON.stringify(outcome)}`);
  await conn.sendNotification(UpdateSettingsNotification, { debounceMs: 0 });
  const items = await inline(uri, endOf(text));
  assert.equal(items?.[0]?.insertText, EXPECTED);
});

test('malformed requests get LSP errors or empty results, and the server stays up', async () => {
  const uri = await open('bad.js', 'let a = 1;\n');
  // By method name with untyped params: these are malformed on purpose.
  const req = (method: string, params: unknown) => conn.sendRequest(method, params);
  await assert.rejects(inline(uri, { line: 99, character: 0 }), /outside the document/);
  const invalidParams = (e: unknown): boolean => e instanceof ResponseError && e.code === ErrorCodes.InvalidParams;
  await assert.rejects(req('textDocument/inlineCompletion', { textDocument: { uri }, position: { line: 'x' } }), (e) => invalidParams(e) && /expected/.test((e as Error).message));
  // (null goes out as positional params, which the typed request refuses before the handler runs.)
  await assert.rejects(req('textDocument/inlineCompletion', null), invalidParams);
  assert.equal(await inline('file:///never/opened.js', { line: 0, character: 0 }), null);
  const untitled = 'untitled:Untitled-1';
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: untitled, languageId: 'javascript', version: 1, text: PROMPT } });
  assert.equal(await inline(untitled, endOf(PROMPT)), null);
  const huge = 'x'.repeat(1_100_000) + '\n' + PROMPT;
  const hugeUri = await open('huge.js', huge);
  assert.equal(await inline(hugeUri, endOf(huge)), null);
  const binary = 'a\u0000b\n' + PROMPT;
  const binUri = await open('bin.js', binary);
  assert.equal(await inline(binUri, endOf(binary)), null);
  await assert.rejects(req('workspaceLm/noSuchMethod', {}), /Unhandled method|not found/i);
  // Still serving.
  const text = PROMPT;
  const okUri = await open('after.js', text);
  const items = await inline(okUri, endOf(text));
  assert.equal(items?.[0]?.insertText, EXPECTED);
});
