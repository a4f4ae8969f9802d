// A repository cannot choose your model: the CLI keeps runs in the user's runs folder (outside
// every repository), `serve` without --checkpoint serves only the root's run there, and a run
// that a folder ships at the old in-repository location is never served — only pointed out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { InitializeRequest, InitializedNotification } from 'vscode-languageserver-protocol';
import { defaultRunDir, legacyRunDir, legacyRunNotice, runsHome } from '../src/run/layout';
import { ModelStatusNotification, type ModelStatusParams } from '../src/shared/protocol';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'wlm-runloc-'));
const cache = join(tmp, 'cache');
const env = { ...process.env, XDG_CACHE_HOME: cache };

test('the runs folder: per platform, outside the workspace, one stable folder per root', () => {
  assert.equal(runsHome({ XDG_CACHE_HOME: '/x/cache' }, 'linux', '/home/u'), '/x/cache/workspace-lm');
  assert.equal(runsHome({}, 'linux', '/home/u'), '/home/u/.cache/workspace-lm');
  assert.equal(runsHome({ XDG_CACHE_HOME: 'relative' }, 'linux', '/home/u'), '/home/u/.cache/workspace-lm', 'a relative XDG path is ignored, as the spec says');
  assert.equal(runsHome({}, 'darwin', '/Users/u'), '/Users/u/Library/Caches/workspace-lm');
  assert.match(runsHome({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32', 'C:\\Users\\u'), /workspace-lm$/);
  const a = defaultRunDir('/src/my project', '/runs');
  assert.equal(a, defaultRunDir('/src/my project/', '/runs'), 'stable for the same folder');
  assert.match(a, /^\/runs\/my_project-[0-9a-f]{12}$/);
  assert.notEqual(defaultRunDir('/a/app', '/runs'), defaultRunDir('/b/app', '/runs'), 'two folders of the same name do not share a run');
});

function write(dir: string, n: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(dir, `m${i}.js`), `function f${i}(a, b) {\n  return a * ${i} + b;\n}\n`.repeat(30));
}

async function serveStatus(root: string): Promise<ModelStatusParams> {
  const server = spawn(process.execPath, [cli, 'serve', '--stdio', '--poll-ms', '100'], { env });
  server.stderr.on('data', () => undefined);
  const conn = createMessageConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
  const settled = new Promise<ModelStatusParams>((resolve) => {
    conn.onNotification(ModelStatusNotification, (s) => { if (s.state !== 'loading') resolve(s); });
  });
  conn.listen();
  await conn.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: pathToFileURL(root).href, workspaceFolders: null, capabilities: {} });
  await conn.sendNotification(InitializedNotification.type, {});
  const status = await settled;
  conn.dispose();
  server.kill();
  return status;
}

test('train keeps the run in the runs folder; serve serves it; a run shipped inside the folder is never served', { timeout: 240_000 }, async () => {
  const folder = join(tmp, 'repo');
  write(folder, 10);
  // A "cloned repository" that ships a run at the old location (here: made by us with --out).
  const shipped = legacyRunDir(folder);
  const t0 = spawnSync(process.execPath, [cli, 'train', folder, '--preset', 'tiny', '--max-steps', '5', '--out', shipped, '--json'], { encoding: 'utf8', env });
  assert.equal(t0.status, 0, t0.stderr);
  const before = await serveStatus(folder);
  assert.equal(before.state, 'no-model', `the shipped run must not be served: ${before.message}`);
  assert.match(await legacyRunNotice(folder) ?? '', /is not used: if you made it on this machine, move it/);
  // Without --out: the runs folder, with a note about the old one.
  const t1 = spawnSync(process.execPath, [cli, 'train', folder, '--preset', 'tiny', '--max-steps', '5', '--json'], { encoding: 'utf8', env });
  assert.equal(t1.status, 0, t1.stderr);
  assert.match(t1.stderr, /holds a run from an earlier version/);
  const run = defaultRunDir(folder, join(cache, 'workspace-lm'));
  assert.ok(existsSync(join(run, 'checkpoints')), `the run is in ${run}`);
  const after = await serveStatus(folder);
  assert.equal(after.state, 'ready', after.message);
  assert.ok(after.model?.dir.startsWith(run), `serves ${after.model?.dir}`);
});

test('train refuses the home folder unless told --allow-home', { timeout: 120_000 }, () => {
  const home = join(tmp, 'home');
  write(home, 6);
  const homeEnv = { ...env, HOME: home };
  const refused = spawnSync(process.execPath, [cli, 'train', home, '--preset', 'tiny', '--max-steps', '2', '--json'], { encoding: 'utf8', env: homeEnv });
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /pass --allow-home to train it anyway/);
  const allowed = spawnSync(process.execPath, [cli, 'train', home, '--preset', 'tiny', '--max-steps', '2', '--allow-home', '--json'], { encoding: 'utf8', env: homeEnv });
  assert.equal(allowed.status, 0, allowed.stderr);
});
