// End-to-end harness: drives a real VS Code (code-server 4.100.3 = VS Code 1.100.3) in Debian's
// headless chromium through playwright-core, fully offline. The recipe, its measurements and
// its pitfalls are in shared/docs/e2e-code-server.md; test/e2e/setup.sh installs what it needs.
//
// Every wait here has a timeout whose message says what was awaited and what was last seen,
// so a failing run explains itself without a rerun.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SCREENSHOT_DIR = path.join(__dirname, 'screenshots');
export const E2E_HOME = process.env.WLM_E2E_HOME || path.join(os.homedir(), '.cache', 'workspace-lm-e2e');
export const CODE_SERVER = path.join(E2E_HOME, 'node_modules', '.bin', 'code-server');
export const CHROMIUM = process.env.WLM_E2E_CHROMIUM || '/usr/bin/chromium';

const SETUP_HINT = 'run `bash test/e2e/setup.sh` first';

// ---------------------------------------------------------------------------------------------
// Prerequisites: missing ones fail the tests, unless a developer opts out (never in CI).

/** What is missing for E2E tests on this machine, or undefined when everything is there. */
export function e2eMissing(): string | undefined {
  const missing: string[] = [];
  if (!existsSync(CODE_SERVER)) missing.push(`code-server (expected at ${CODE_SERVER})`);
  if (!existsSync(CHROMIUM)) missing.push(`chromium (expected at ${CHROMIUM})`);
  return missing.length ? `E2E prerequisites missing: ${missing.join(', ')}; ${SETUP_HINT}` : undefined;
}

/**
 * For node:test's `skip` option. A missing prerequisite does not skip: this returns false, the
 * test runs and startVsCode fails with the reason — a skipped test proves nothing. A developer
 * without code-server/chromium sets WORKSPACE_LM_SKIP_E2E=1 to skip them with the reason
 * instead; with `CI` set that opt-out is ignored: CI must never go green by skipping its E2E tests.
 */
export function e2eSkip(): string | false {
  const missing = e2eMissing();
  return missing && process.env.WORKSPACE_LM_SKIP_E2E === '1' && !process.env.CI ? `WORKSPACE_LM_SKIP_E2E=1 and ${missing}` : false;
}

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until it returns something other than undefined, or throws after `timeoutMs`
 * with "timed out after N ms waiting for <what>; last seen: <describe(last probe)>".
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number; lastSeen?: () => Promise<string> | string } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err; // e.g. a detached frame while the workbench reloads: keep polling
    }
    if (Date.now() >= deadline) break;
    await sleep(opts.intervalMs ?? 100);
  }
  let seen = '';
  try {
    seen = opts.lastSeen ? await opts.lastSeen() : '';
  } catch (err) {
    seen = `(could not read: ${String(err)})`;
  }
  if (!seen && lastError) seen = `error ${String(lastError)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen ? `; last seen: ${seen}` : ''}`);
}

function run(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number; what: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs, maxBuffer: 16 << 20, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        if (err) {
          const why = err.killed ? `timed out after ${opts.timeoutMs} ms` : `failed (${err.message.split('\n')[0]})`;
          reject(new Error(`${opts.what} ${why}; output:\n${output.slice(-4000)}`));
        } else {
          resolve(output);
        }
      },
    ).stdin?.end(); // no stdin: a prompt (vsce asks some questions) fails instead of hanging
  });
}

// ---------------------------------------------------------------------------------------------
// Packaging

/**
 * The .vsix to install. Uses `opts.vsix` when given, or for this repo's extension
 * $WLM_E2E_VSIX when set (e.g. CI packaged it already); otherwise packages `opts.extensionDir`
 * (default: this repo) with vsce 3.9.2, the last version that runs on Node 20, into
 * `opts.outDir` (default: a temp dir removed when the process exits).
 */
export async function packageVsix(
  opts: { vsix?: string; extensionDir?: string; outDir?: string } = {},
): Promise<string> {
  const given = opts.vsix ?? (opts.extensionDir === undefined ? process.env.WLM_E2E_VSIX : undefined);
  if (given) {
    const vsix = path.resolve(given);
    if (!existsSync(vsix)) throw new Error(`given .vsix does not exist: ${vsix}`);
    return vsix;
  }
  const extensionDir = path.resolve(opts.extensionDir ?? REPO_ROOT);
  const manifest = JSON.parse(readFileSync(path.join(extensionDir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  let outDir = opts.outDir;
  if (outDir === undefined) {
    outDir = await mkdtemp(path.join(os.tmpdir(), 'wlm-e2e-vsix-'));
    tempDirs.add(outDir); // ours: removed when the test process exits
    installExitHook();
  }
  mkdirSync(outDir, { recursive: true });
  const vsix = path.join(outDir, `${manifest.name}-${manifest.version}.vsix`);
  // The project's own vsce, not `npx @vscode/vsce` from the extension dir: outside the repo
  // npx would fetch the newest vsce, which needs Node 22.
  const vsce = path.join(REPO_ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
  if (!existsSync(vsce)) throw new Error(`vsce not found at ${vsce}; run \`npm ci\``);
  await run(
    process.execPath,
    [vsce, 'package', '--no-dependencies', '--skip-license', '--allow-missing-repository', '--no-rewrite-relative-links', '--out', vsix],
    { cwd: extensionDir, timeoutMs: 180_000, what: `vsce package in ${extensionDir}` },
  );
  if (!existsSync(vsix)) throw new Error(`vsce package reported success but ${vsix} is missing`);
  return vsix;
}

// ---------------------------------------------------------------------------------------------
// Sessions

export interface StartOptions {
  /** Path of the .vsix to install into the fresh profile. */
  vsix: string;
  /** Absolute path of the folder to open. */
  workspace: string;
  /** Merged over the harness defaults in the fresh profile's User/settings.json. */
  userSettings?: Record<string, unknown>;
  /**
   * true (default): workspace trust disabled, the folder is trusted. false: trust enabled with
   * no startup prompt, so the folder opens in Restricted Mode without a blocking modal.
   */
  trusted?: boolean;
  /** Browser viewport; screenshots have this size. Default 1400x900. */
  viewport?: { width: number; height: number };
}

export interface Session {
  page: Page;
  browser: Browser;
  /** http://127.0.0.1:PORT/?folder=... as opened. */
  url: string;
  workspace: string;
  /** The temp dir holding the profile (user-data, extensions, XDG dirs, TMPDIR). */
  root: string;
  /** code-server's stdout+stderr, then the extension host logs (extensions' output lands there). */
  logs(): string;
  /**
   * Live processes of this session (see sessionProcesses), plus any process seen when close()
   * began that is still alive. [] after a successful close().
   */
  processes(): ProcessInfo[];
  /**
   * Closes the browser, kills code-server's process group, then kills whatever process of the
   * session survived that, and removes the temp dir. Idempotent; never throws.
   */
  close(): Promise<void>;
}

/** Settings that make a browser VS Code deterministic for tests; see the doc for each. */
function defaultSettings(trusted: boolean): Record<string, unknown> {
  return {
    // With trust enabled, a modal "Do you trust the authors" blocks everything (Escape does
    // not close it). Untrusted runs use Restricted Mode without the prompt instead.
    'security.workspace.trust.enabled': !trusted,
    ...(trusted ? {} : { 'security.workspace.trust.startupPrompt': 'never' }),
    // Browser builds autosave by default: typing would be written into the fixture.
    'files.autoSave': 'off',
    'files.hotExit': 'off',
    'chat.disableAIFeatures': true,
    'workbench.startupEditor': 'none',
    // Nothing should open over the editor or reach for the network on its own.
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.tips.enabled': false,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'update.mode': 'none',
    'telemetry.telemetryLevel': 'off',
    // The suggest widget hides ghost text and Tab would accept its item instead.
    'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.wordBasedSuggestions': 'off',
    'editor.suggestOnTriggerCharacters': false,
  };
}

/**
 * Every process a session starts (code-server and what it spawns, chromium and its crash
 * handlers) inherits WLM_E2E_SESSION=<session root> in its environment. That tells them apart
 * from other code-server or chromium processes on the machine (a developer's own, a concurrent
 * test run), so close() can make sure none survives and a test can prove it.
 */
const SESSION_MARKER = 'WLM_E2E_SESSION';

/** Environment for code-server: the profile's own XDG dirs and TMPDIR, nothing inherited from
 * a VS Code the developer may be running this in (VSCODE_IPC_HOOK_CLI would turn
 * `code-server --install-extension` into a client of that outer VS Code). */
function serverEnv(root: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('VSCODE_') && k !== 'ELECTRON_RUN_AS_NODE') env[k] = v;
  }
  env.XDG_CONFIG_HOME = path.join(root, 'xdg-config');
  env.XDG_DATA_HOME = path.join(root, 'xdg-data');
  env.XDG_CACHE_HOME = path.join(root, 'xdg-cache'); // else a deviceid lands in ~/.cache
  env.TMPDIR = path.join(root, 'tmp');
  env[SESSION_MARKER] = root;
  return env;
}

export interface ProcessInfo {
  pid: number;
  cmd: string;
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'latin1');
  } catch {
    return undefined; // exited meanwhile, or not ours to read
  }
}

function cmdlineOf(pid: number): string | undefined {
  return readProc(pid, 'cmdline')?.split('\0').join(' ').trim();
}

/**
 * Live processes of the session whose root dir is `root` (Linux /proc; [] elsewhere): those
 * carrying its marker, their descendants and the members of their process groups (chromium's
 * zygote and renderers start with a cleaned environment, so the marker alone misses them).
 */
export function sessionProcesses(root: string): ProcessInfo[] {
  const needle = `\0${SESSION_MARKER}=${root}\0`;
  let pids: number[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  } catch {
    return [];
  }
  const stat = new Map<number, { ppid: number; pgid: number }>();
  const ours = new Set<number>();
  for (const pid of pids) {
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parens, so split after the last ')'.
    const st = readProc(pid, 'stat');
    if (!st) continue;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z') continue; // a zombie has exited already; only its parent can reap it
    stat.set(pid, { ppid: Number(f[1]), pgid: Number(f[2]) });
    if (`\0${readProc(pid, 'environ') ?? ''}`.includes(needle)) ours.add(pid);
  }
  const groups = new Set([...ours].map((pid) => stat.get(pid)!.pgid));
  groups.delete(stat.get(process.pid)?.pgid ?? -1); // our sessions never run in the test's own group
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, { ppid, pgid }] of stat) {
      if (!ours.has(pid) && (ours.has(ppid) || groups.has(pgid))) {
        ours.add(pid);
        grew = true;
      }
    }
  }
  ours.delete(process.pid); // never the test process itself
  return [...ours].flatMap((pid) => {
    const cmd = cmdlineOf(pid);
    return cmd === undefined ? [] : [{ pid, cmd }];
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM a process group, give it `graceMs` to exit, then SIGKILL it; resolves when it is gone. */
async function killGroup(pgid: number, graceMs: number): Promise<void> {
  kill(-pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pgid)) kill(-pgid, 'SIGKILL');
  while (groupAlive(pgid)) await sleep(50);
}

/** browser.close(), but bounded: a hung browser must not keep the rest from being closed. */
async function closeBrowser(browser: Browser, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    browser.close().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer); // or the timer alone would hold the test process open
}

// Safety net for what close() did not get to (a crashed test file, Ctrl-C): on exit, kill the
// code-server process groups and every other process of the live sessions synchronously, and
// remove our temp dirs. (playwright also kills its browsers on exit.)
const liveSessions = new Map<string, number | undefined>(); // session root -> code-server pgid
const tempDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const [root, pgid] of liveSessions) {
      if (pgid !== undefined) kill(-pgid, 'SIGKILL');
      for (const p of sessionProcesses(root)) kill(p.pid, 'SIGKILL');
      if (!process.env.WLM_E2E_KEEP) tempDirs.add(root);
    }
    liveSessions.clear();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => process.exit(128 + (os.constants.signals[sig] ?? 0))); // runs killAll
  }
}

/** The extension host logs under the profile's logs dir (where an extension's console.log
 * lands), oldest first. */
function readExtensionHostLogs(userData: string): string {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of entries) {
      const p = path.join(dir, name);
      try {
        if (statSync(p).isDirectory()) walk(p);
        else if (/exthost\.log$/i.test(name)) out.push(`--- ${path.relative(userData, p)}\n${readFileSync(p, 'utf8')}`);
      } catch {
        // rotated away meanwhile
      }
    }
  };
  walk(path.join(userData, 'logs'));
  return out.join('\n');
}

/**
 * A fresh VS Code with `vsix` installed and `workspace` open, in headless chromium.
 * Always pair it with `close()` (e.g. `t.after(() => session.close())`); if starting fails
 * half-way, whatever was started is closed before the error is thrown.
 */
export async function startVsCode(opts: StartOptions): Promise<Session> {
  const missing = e2eMissing();
  if (missing) throw new Error(`${missing} (${process.env.CI ? 'CI is set, so WORKSPACE_LM_SKIP_E2E does not apply' : 'or set WORKSPACE_LM_SKIP_E2E=1 to skip the E2E tests'})`);
  const vsix = path.resolve(opts.vsix);
  const workspace = path.resolve(opts.workspace);
  if (!existsSync(vsix)) throw new Error(`vsix not found: ${vsix}`);
  if (!existsSync(workspace)) throw new Error(`workspace not found: ${workspace}`);

  // A fresh profile per session: user data, extensions, XDG dirs and TMPDIR in one temp dir.
  const root = await mkdtemp(path.join(os.tmpdir(), 'wlm-e2e-'));
  const userData = path.join(root, 'user-data');
  const extensions = path.join(root, 'extensions');
  for (const d of [path.join(userData, 'User'), extensions, ...['xdg-config', 'xdg-data', 'xdg-cache', 'tmp'].map((d) => path.join(root, d))]) {
    mkdirSync(d, { recursive: true });
  }
  const settings = { ...defaultSettings(opts.trusted ?? true), ...opts.userSettings };
  writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  const env = serverEnv(root);
  const profileArgs = ['--user-data-dir', userData, '--extensions-dir', extensions];
  installExitHook();
  liveSessions.set(root, undefined);

  let output = ''; // code-server's stdout + stderr
  let server: ChildProcess | undefined;
  let serverExit: Promise<void> = Promise.resolve();
  let browser: Browser | undefined;
  let finalLogs: string | undefined;
  const logs = (): string => finalLogs ?? `${output}\n${readExtensionHostLogs(userData)}`;

  // Processes seen when close() began: checked again (and killed if need be) at its end.
  let seenAtClose: ProcessInfo[] = [];
  const processes = (): ProcessInfo[] => {
    const now = sessionProcesses(root);
    const survivors = seenAtClose.filter((p) => cmdlineOf(p.pid) === p.cmd && !now.some((q) => q.pid === p.pid)); // same cmd: not a reused pid
    return [...now, ...survivors];
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      try {
        seenAtClose = sessionProcesses(root);
        if (browser) await closeBrowser(browser, 10_000);
        // The whole group (server, extension host, pty host, ...) must go, not just the
        // process we spawned: 5 s to exit cleanly, then SIGKILL.
        if (server?.pid !== undefined) await killGroup(server.pid, 5000);
        await serverExit;
        // Chromium's helpers and crash handlers exit shortly after the browser. Whatever of
        // the session is still there after 5 s is killed: no test leaks a process.
        const deadline = Date.now() + 5000;
        while (processes().length && Date.now() < deadline) await sleep(100);
        for (const p of processes()) kill(p.pid, 'SIGKILL');
        // Dead processes linger as zombies until reaped: chromium's zygotes, renderers and
        // crash handlers by init, which here takes 1-2 s. Give that a moment, so that pgrep
        // right after close() finds nothing.
        const reaped = Date.now() + 5000;
        while (seenAtClose.some((p) => existsSync(`/proc/${p.pid}`)) && Date.now() < reaped) await sleep(50);
        finalLogs = logs();
        liveSessions.delete(root);
        if (process.env.WLM_E2E_KEEP) console.error(`[e2e] kept profile dir ${root}`);
        else rmSync(root, { recursive: true, force: true });
      } catch (err) {
        // close() runs in after-hooks and catch blocks: report, never mask the test's error.
        console.error(`[e2e] close() of ${root} failed: ${String(err)}`);
      }
    })());

  try {
    // 1. Install the extension: a separate code-server invocation that installs and exits.
    const installOut = await run(CODE_SERVER, ['--install-extension', vsix, ...profileArgs], {
      env,
      timeoutMs: 120_000,
      what: `code-server --install-extension ${path.basename(vsix)}`,
    });
    output += installOut;
    if (!/successfully installed/i.test(installOut)) {
      throw new Error(`installing ${vsix} did not report success:\n${installOut}`);
    }

    // 2. Start the server in its own process group (detached), so close() can kill all it spawns.
    const port = await freePort();
    const proc = spawn(
      CODE_SERVER,
      ['--auth', 'none', '--disable-telemetry', '--disable-update-check', '--bind-addr', `127.0.0.1:${port}`, ...profileArgs],
      { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server = proc;
    liveSessions.set(root, proc.pid);
    let exited: string | undefined;
    serverExit = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        exited = `code-server exited (code ${code}, signal ${signal})`;
        resolve();
      });
      proc.once('error', (err) => {
        exited = `code-server failed to start: ${err.message}`;
        resolve();
      });
    });
    proc.stdout?.setEncoding('utf8').on('data', (s: string) => (output += s));
    proc.stderr?.setEncoding('utf8').on('data', (s: string) => (output += s));
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      `code-server to answer on ${base}/healthz`,
      async () => {
        if (exited) throw new Error(exited);
        return (await httpStatus(`${base}/healthz`)) === 200 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, lastSeen: () => `${exited ?? 'still running'}; output:\n${output.slice(-3000)}` },
    );

    // 3. The browser (Debian's chromium; playwright-core downloads none). handleSIG*: false,
    // so our own cleanup runs on a signal.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      timeout: 60_000,
      // The session marker (see sessionProcesses), and scratch files inside the session dir.
      env: { ...process.env, TMPDIR: path.join(root, 'tmp'), XDG_CACHE_HOME: path.join(root, 'xdg-cache'), [SESSION_MARKER]: root },
    });
    const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1400, height: 900 } });
    const page = await context.newPage();
    // ?folder= opens exactly this folder (otherwise the profile's last folder is reopened).
    const url = `${base}/?folder=${encodeURIComponent(workspace)}`;
    await page.goto(url, { timeout: 60_000 });
    await waitFor(
      'the VS Code workbench (status bar and editor area) to render',
      async () =>
        (await page.locator('.monaco-workbench #workbench\\.parts\\.statusbar').isVisible()) &&
        (await page.locator('.monaco-workbench #workbench\\.parts\\.editor').isVisible())
          ? true
          : undefined,
      {
        timeoutMs: 60_000,
        intervalMs: 200,
        lastSeen: async () => `page title ${JSON.stringify(await page.title())}; server output:\n${output.slice(-2000)}`,
      },
    );
    return { page, browser, url, workspace, root, logs, processes, close };
  } catch (err) {
    await close();
    throw new Error(`startVsCode failed: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Workbench helpers

const STATUSBAR_ITEMS = '#workbench\\.parts\\.statusbar .statusbar-item';
const PALETTE_INPUT = '.quick-input-widget input.input';

async function paletteRows(page: Page): Promise<string[]> {
  return page
    .locator('.quick-input-widget .quick-input-list .monaco-list-row')
    .evaluateAll((rows) => rows.map((r) => `${r.classList.contains('focused') ? '*' : ''}${r.getAttribute('aria-label') ?? ''}`));
}

/**
 * Runs a command by its full palette title (category included, e.g. "Workspace LM: Train"):
 * F1, type, Enter. Retries until the palette's focused row is exactly that command, since for
 * ~1 s after the workbench loads an extension's commands are not registered yet. Never presses
 * Enter on another row.
 */
export async function runCommand(page: Page, title: string, timeoutMs = 20_000): Promise<void> {
  const want = title.toLowerCase();
  let lastRows: string[] = [];
  await waitFor(
    `command "${title}" in the command palette`,
    async () => {
      await page.keyboard.press('Escape'); // close a palette or notification left open
      await page.keyboard.press('F1');
      const input = page.locator(PALETTE_INPUT);
      await input.waitFor({ state: 'visible', timeout: 5000 });
      await page.keyboard.type(title);
      // The list filters asynchronously: give it a moment to settle on this title.
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        lastRows = await paletteRows(page);
        // A row's aria-label is "<title>" or "<title>, <keybinding>[, similar commands]".
        const focused = lastRows.find((r) => r.startsWith('*'))?.slice(1).toLowerCase();
        if (focused === want || focused?.startsWith(`${want},`)) {
          await page.keyboard.press('Enter');
          return true;
        }
        await sleep(100);
      }
      await page.keyboard.press('Escape');
      return undefined;
    },
    { timeoutMs, intervalMs: 300, lastSeen: () => `palette rows (focused marked *): ${JSON.stringify(lastRows.slice(0, 8))}` },
  );
}

/** Texts of all status bar items, keyed by their element id (`<publisher>.<name>.<itemId>`). */
export async function statusBarItems(page: Page): Promise<Record<string, string>> {
  const items = await page
    .locator(STATUSBAR_ITEMS)
    // (No DOM lib in this tsconfig: describe the element by the fields used.)
    .evaluateAll((els) => els.map((e) => [e.id, (e as { innerText: string }).innerText.trim()] as [string, string]));
  return Object.fromEntries(items);
}

/** Text of the first status bar item whose id contains `idSubstring`, or undefined if none. */
export async function statusBarText(page: Page, idSubstring: string): Promise<string | undefined> {
  const items = await statusBarItems(page);
  const id = Object.keys(items).find((k) => k.includes(idSubstring));
  return id === undefined ? undefined : items[id];
}

/** Waits until that status bar item's text matches `pattern`; returns the text. */
export async function waitForStatusBar(page: Page, idSubstring: string, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  let last: string | undefined;
  return waitFor(
    `status bar item *${idSubstring}* to match ${pattern}`,
    async () => {
      last = await statusBarText(page, idSubstring);
      return last !== undefined && pattern.test(last) ? last : undefined;
    },
    {
      timeoutMs,
      intervalMs: 200,
      lastSeen: async () =>
        last === undefined
          ? `no such item; items: ${JSON.stringify(await statusBarItems(page))}`
          : JSON.stringify(last),
    },
  );
}

/**
 * The content frame of the webview shown in the sidebar (a WebviewView). Webviews are nested
 * iframes: `iframe.webview.ready` > `#active-frame`. With several webviews (sidebar, panel,
 * editors) this picks the one whose box overlaps the sidebar; waits for it to exist.
 */
export async function sidebarFrame(page: Page, timeoutMs = 20_000): Promise<FrameLocator> {
  const index = await waitFor(
    'a ready webview iframe inside the sidebar',
    async () => {
      const sidebar = await page.locator('#workbench\\.parts\\.sidebar').boundingBox();
      if (!sidebar) return undefined;
      const frames = page.locator('iframe.webview.ready');
      const n = await frames.count();
      for (let i = 0; i < n; i++) {
        const b = await frames.nth(i).boundingBox();
        if (
          b &&
          b.width > 0 &&
          b.height > 0 &&
          b.x < sidebar.x + sidebar.width &&
          b.x + b.width > sidebar.x &&
          b.y < sidebar.y + sidebar.height &&
          b.y + b.height > sidebar.y
        ) {
          return i;
        }
      }
      return undefined;
    },
    {
      timeoutMs,
      intervalMs: 200,
      lastSeen: async () => {
        const sidebar = await page.locator('#workbench\\.parts\\.sidebar').boundingBox();
        const boxes = await page.locator('iframe.webview').evaluateAll((fs) =>
          fs.map((f) => ({ cls: f.className, box: f.getBoundingClientRect().toJSON() as unknown })),
        );
        return `sidebar box ${JSON.stringify(sidebar)}; webview iframes ${JSON.stringify(boxes)}`;
      },
    },
  );
  return page.locator('iframe.webview.ready').nth(index).contentFrame().frameLocator('#active-frame');
}

/** Opens a workspace file via Quick Open (Ctrl+P) and waits until its editor is active. */
export async function openFile(page: Page, relPath: string, timeoutMs = 20_000): Promise<void> {
  const base = path.posix.basename(relPath.split(path.sep).join('/'));
  await waitFor(
    `"${relPath}" to open in the active editor`,
    async () => {
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+P');
      await page.locator(PALETTE_INPUT).waitFor({ state: 'visible', timeout: 5000 });
      await page.keyboard.type(relPath);
      // Quick Open searches files asynchronously (ripgrep): wait for a row naming the file.
      const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row.focused', { hasText: base });
      try {
        await row.waitFor({ state: 'visible', timeout: 3000 });
      } catch {
        await page.keyboard.press('Escape');
        return undefined;
      }
      await page.keyboard.press('Enter');
      const tab = page.locator('.tabs-container .tab.active', { hasText: base });
      await tab.waitFor({ state: 'visible', timeout: 5000 });
      await page.locator('.editor-instance .monaco-editor.focused').waitFor({ state: 'visible', timeout: 5000 });
      return true;
    },
    {
      timeoutMs,
      intervalMs: 300,
      lastSeen: async () =>
        `tabs ${JSON.stringify(await page.locator('.tabs-container .tab').allInnerTexts())}; quick open rows ${JSON.stringify(await paletteRows(page))}`,
    },
  );
}

/**
 * Types into the focused element as key presses (so the editor's type handlers, auto-closing
 * brackets and inline completion triggers all run, as for a person). "\n" presses Enter.
 */
export async function typeText(page: Page, text: string, delayMs = 20): Promise<void> {
  await page.keyboard.type(text, { delay: delayMs });
}

/** In the page: the focused editor's cursor line element (a `.view-line`), or null. */
function cursorLineScript(): string {
  return `(() => {
    const editor = document.querySelector('.editor-instance .monaco-editor.focused')
      ?? document.querySelector('.editor-instance .monaco-editor');
    const cursor = editor?.querySelector('.cursors-layer .cursor');
    if (!editor || !cursor) return null;
    const top = cursor.style.top;
    return [...editor.querySelectorAll('.view-lines .view-line')].find((l) => l.style.top === top) ?? null;
  })()`;
}

/**
 * The inline completion (ghost text) shown on the cursor line: all `.ghost-text-decoration`
 * spans of that line joined (one span per token). '' when there is none.
 */
export async function ghostText(page: Page): Promise<string> {
  return page.evaluate(`(() => {
    const line = ${cursorLineScript()};
    if (!line) return '';
    return [...line.querySelectorAll('.ghost-text-decoration')].map((s) => s.textContent ?? '').join('').replace(/\\u00a0/g, ' ');
  })()`);
}

/**
 * The text of the cursor line as the document has it: the rendered line minus ghost text
 * (ghost spans sit inside `.view-line`, so the raw line text includes them).
 */
export async function cursorLineText(page: Page): Promise<string> {
  return page.evaluate(`(() => {
    const line = ${cursorLineScript()};
    if (!line) return '';
    const copy = line.cloneNode(true);
    copy.querySelectorAll('.ghost-text-decoration, .ghost-text-decoration-preview').forEach((s) => s.remove());
    return (copy.textContent ?? '').replace(/\\u00a0/g, ' ');
  })()`);
}

/** Cursor position from the status bar ("Ln 3, Col 7"), 1-based; undefined if not shown. */
export async function cursorPosition(page: Page): Promise<{ line: number; column: number } | undefined> {
  const el = page.locator('#status\\.editor\\.selection');
  if (!(await el.count())) return undefined;
  const m = /Ln (\d+), Col (\d+)/.exec(await el.innerText());
  return m ? { line: Number(m[1]), column: Number(m[2]) } : undefined;
}

/** Saves the viewport as test/e2e/screenshots/<name>.png (gitignored); returns the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^\w.-]+/g, '_')}.png`);
  await page.screenshot({ path: file });
  return file;
}
