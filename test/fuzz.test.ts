// Fuzzing the boundaries that take input from outside: 10,000+ malformed or random LSP messages
// against the language server (serving a real model), and random values as sidebar webview
// messages. The server must never crash, must answer every request (a result or an error it
// sent: not one the client made up when the connection died), and must still serve correct
// completions afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, ErrorCodes, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { parseWebviewMessage } from '../src/shared/webviewProtocol';
import { Rng } from '../src/ml/rng';

const root = join(__dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'wlm-fuzz-'));
const rng = new Rng(31337);

/** A random JSON-ish value: the shapes a confused or hostile client might send. */
function junk(depth = 0): unknown {
  switch (rng.int(depth > 2 ? 8 : 11)) {
    case 0: return null;
    case 1: return rng.int(2) === 0;
    case 2: return [0, -1, 1e308, -1e308, 2 ** 53, 0.5, -0.0, 1e-300][rng.int(8)];
    case 3: return rng.int(1000) - 500;
    case 4: return '';
    case 5: return 'x'.repeat(rng.int(5) === 0 ? 200_000 + rng.int(300_000) : rng.int(100));
    case 6: return ['file:///nope.js', 'untitled:1', 'file:///%00', '../../etc/passwd', '\u0000\uFFFF', '🙂'.repeat(50)][rng.int(6)];
    case 7: return String.fromCharCode(...Array.from({ length: rng.int(40) }, () => rng.int(0x10000)));
    case 8: return Array.from({ length: rng.int(5) }, () => junk(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['textDocument', 'position', 'uri', 'line', 'character', 'text', 'version', 'contentChanges', 'context', 'triggerKind', 'languageId', 'folders', 'outDir', 'mode', 'maxTokens', '__proto__', 'constructor'];
      // defineProperty, so "__proto__" becomes a real key on the wire instead of a prototype.
      for (let i = rng.int(5); i > 0; i--) Object.defineProperty(o, keys[rng.int(keys.length)]!, { value: junk(depth + 1), enumerable: true, configurable: true, writable: true });
      return o;
    }
  }
}

test('10,000 malformed and random LSP messages: no crash, every request answered, still correct after', { timeout: 240_000 }, async () => {
  const corpus = join(tmp, 'corpus');
  mkdirSync(corpus);
  for (let i = 0; i < 6; i++) writeFileSync(join(corpus, `f${i}.js`), 'function add(a, b) {\n  return a + b;\n}\n'.repeat(60));
  const run = join(tmp, 'run');
  const train = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'train', corpus, '--preset', 'tiny', '--epochs', '30', '--max-steps', '120', '--out', run, '--json'], { encoding: 'utf8' });
  assert.equal(train.status, 0, train.stderr);

  const server = spawn(process.execPath, [join(root, 'dist', 'cli.js'), 'serve', '--stdio', '--checkpoint', run, '--poll-ms', '200']);
  let crashed: number | null | undefined;
  server.on('exit', (code) => { crashed = code; });
  let stderr = '';
  server.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const conn = createMessageConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
  conn.listen();
  after(() => {
    conn.dispose();
    server.kill();
  });
  let ready = false;
  conn.onNotification('workspaceLm/modelStatus', (s: { state: string }) => { if (s.state === 'ready') ready = true; });
  await conn.sendRequest('initialize', { processId: null, rootUri: null, capabilities: { textDocument: { inlineCompletion: {} } }, initializationOptions: { settings: { debounceMs: 0, minMeanLogProb: -20 } } });
  await conn.sendNotification('initialized', {});
  for (let i = 0; i < 200 && !ready; i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(ready, 'model loaded');

  // A real open document, so that many of the random requests reach the completion engine.
  const uri = pathToFileURL(join(corpus, 'open.js')).href;
  await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'javascript', version: 1, text: 'function add(a, b) {\n  return a' } });

  const requestMethods = ['textDocument/inlineCompletion', 'textDocument/completion', 'workspaceLm/trainingSnapshot', 'workspaceLm/startTraining', 'workspaceLm/pauseTraining', 'workspaceLm/noSuchThing', 'textDocument/hover', '$/unknown'];
  const notificationMethods = ['textDocument/didOpen', 'textDocument/didChange', 'textDocument/didClose', 'workspaceLm/updateSettings', '$/cancelRequest', 'workspace/didChangeConfiguration', 'workspaceLm/whatever'];
  const TOTAL = 10_000;
  let requests = 0;
  let answered = 0;
  /** Requests that settled without an answer from the server: the client rejected them itself. */
  const unanswered: string[] = [];
  // vscode-jsonrpc rejects a pending request on its own (codes -32099..-32096: write/read error,
  // connection disposed or inactive; or a plain Error) when no answer can come any more.
  const fromServer = (err: unknown): boolean =>
    err instanceof ResponseError && !(err.code >= ErrorCodes.MessageWriteError && err.code <= ErrorCodes.ConnectionInactive);
  const pending: Promise<void>[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const kind = rng.int(10);
    if (kind < 5) {
      const method = requestMethods[rng.int(requestMethods.length)]!;
      // Mostly-valid completion requests with one field broken reach deeper into the server.
      const params = method === 'textDocument/inlineCompletion' && rng.int(2) === 0
        ? { textDocument: { uri: rng.int(3) === 0 ? uri : junk() }, position: { line: rng.int(3) === 0 ? junk() : rng.int(4) - 1, character: rng.int(3) === 0 ? junk() : rng.int(40) - 5 }, context: junk() }
        : method === 'workspaceLm/startTraining' ? { folders: [join(tmp, 'no-such-folder')], outDir: join(tmp, 'fuzz-out'), preset: junk() } : junk();
      requests++;
      pending.push(conn.sendRequest(method, params).then(() => { answered++; }, (err: unknown) => {
        if (fromServer(err)) answered++;
        else unanswered.push(`${method}: ${err instanceof Error ? err.message : String(err)}`);
      }));
    } else {
      const method = notificationMethods[rng.int(notificationMethods.length)]!;
      const params = method === 'textDocument/didChange' && rng.int(2) === 0
        ? { textDocument: { uri, version: rng.int(100) }, contentChanges: [{ text: (JSON.stringify(junk()) ?? '').slice(0, 5000) }] }
        : junk();
      void conn.sendNotification(method, params);
    }
    if (i % 200 === 0) {
      await Promise.all(pending.splice(0));
      assert.equal(crashed, undefined, `the server exited (${crashed}) after ${i} messages: ${stderr}`);
      assert.deepEqual(unanswered, [], `requests the server never answered, after ${i} messages`);
    }
  }
  await Promise.all(pending);
  assert.equal(crashed, undefined, `the server exited: ${stderr}`);
  assert.deepEqual(unanswered, [], 'requests the server never answered');
  assert.equal(answered, requests, 'every request got an answer from the server (result or error)');
  assert.ok(requests > 4000, `only ${requests} requests were sent`);

  // Still serving, and correctly.
  const text = 'function add(a, b) {\n  return a';
  const fresh = pathToFileURL(join(corpus, 'after.js')).href;
  await conn.sendNotification('textDocument/didOpen', { textDocument: { uri: fresh, languageId: 'javascript', version: 1, text } });
  const items = await conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri: fresh }, position: { line: 1, character: 10 }, context: { triggerKind: 1 } }) as { insertText: string }[] | null;
  assert.equal(items?.[0]?.insertText, ' + b;');
});

test('the webview host accepts only well-formed messages (10,000 random values)', () => {
  let accepted = 0;
  for (let i = 0; i < 10_000; i++) {
    const raw = rng.int(4) === 0 ? { type: ['ready', 'command', 'eval', '__proto__'][rng.int(4)], command: junk() } : junk();
    const m = parseWebviewMessage(raw);
    if (m === null) continue;
    accepted++;
    assert.ok(m.type === 'ready' || (m.type === 'command' && ['start', 'pause', 'resume', 'stop'].includes(m.command)), JSON.stringify(m));
  }
  assert.ok(accepted > 0, 'some well-formed messages were generated and accepted');
  assert.deepEqual(parseWebviewMessage({ type: 'command', command: 'stop' }), { type: 'command', command: 'stop' });
  assert.equal(parseWebviewMessage({ type: 'command', command: 'rm -rf /' }), null);
});

test('malformed JSON-RPC frames (bad JSON, wrong shapes, bad headers) do not stop the server', async () => {
  const server = spawn(process.execPath, [join(root, 'dist', 'cli.js'), 'serve', '--stdio', '--checkpoint', join(tmp, 'none')]);
  let out = '';
  server.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  let exited = false;
  server.on('exit', () => { exited = true; });
  try {
    const frame = (s: string): string => `Content-Length: ${Buffer.byteLength(s)}\r\n\r\n${s}`;
    for (const body of ['{bad json', '[1,2,3]', '{"jsonrpc":"2.0","id":"x","method":5}', 'null', '"str"', '{"jsonrpc":"2.0","method":"textDocument/didOpen","params":7}']) server.stdin.write(frame(body));
    server.stdin.write(frame(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { processId: null, rootUri: null, capabilities: {} } })));
    for (let i = 0; i < 100 && !out.includes('"id":1'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.includes('"id":1') && out.includes('capabilities'), `no answer to initialize after garbage: ${out.slice(0, 300)}`);
    assert.equal(exited, false);
  } finally {
    server.kill();
  }
});
