// Workspace LM in a real VS Code (code-server + headless chromium), as a user drives it: train
// from the palette and watch the status bar and the sidebar, pause and resume, get ghost text and
// accept it with Tab, reload the window mid-run, and an untrusted workspace that must stay inert.
// Run: node --import tsx --test test/e2e/extension.e2e.ts   (after bash test/e2e/setup.sh)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  cursorLineText, e2eSkip, ghostText, openFile, packageVsix, runCommand, screenshot, sidebarFrame, sleep,
  startVsCode, statusBarText, typeText, waitFor, waitForStatusBar,
} from './harness';

const STATUS = 'workspaceLm.status';
const PATTERN = 'function greet(name) {\n  return "Hello, " + name + "!";\n}\n';
const PROMPT_LINE = 'function greet(name) {';
const PROMPT_NEXT = 'return "Hel';
const ACCEPTED = 'return "Hello, " + name + "!";';

const workspaces: string[] = [];
after(() => {
  for (const w of workspaces) rmSync(w, { recursive: true, force: true });
});

/** A workspace whose code repeats one function between varying lines: something to learn. */
function makeWorkspace(files = 12): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wlm-e2e-ws-'));
  workspaces.push(dir);
  const fillers = ['let a = 1;', 'const b = a * 2;', 'if (b > 3) { a = 0; }', 'console.log(a, b);'];
  for (let i = 0; i < files; i++) {
    let s = '';
    for (let k = 0; k < 40; k++) s += `${fillers[(i + k) % fillers.length]}\n${PATTERN}\n`;
    writeFileSync(path.join(dir, `greet${i}.js`), s);
  }
  mkdirSync(path.join(dir, 'scratch'));
  writeFileSync(path.join(dir, 'scratch', 'typing.js'), 'let a = 1;\n');
  return dir;
}

const settings = (epochs: number): Record<string, unknown> => ({
  'workspaceLm.preset': 'tiny',
  'workspaceLm.epochs': epochs,
  'workspaceLm.threads': 1,
  'workspaceLm.maxMinutes': 0,
  'workspaceLm.completions.debounceMs': 0,
});

const stepOf = (text: string | undefined): number => Number(/step (\d+)\//.exec(text ?? '')?.[1] ?? -1);

async function chartPoints(page: import('playwright-core').Page): Promise<number> {
  const frame = await sidebarFrame(page);
  const v = await frame.locator('#loss-chart').getAttribute('data-points', { timeout: 5000 }).catch(() => null);
  return Number(v ?? 0);
}

let vsix = '';
before(async () => {
  if (e2eSkip()) return;
  vsix = await packageVsix();
});

test('train from the palette: status bar, live chart, pause/resume, ghost text accepted with Tab', { skip: e2eSkip(), timeout: 300_000 }, async (t) => {
  const workspace = makeWorkspace();
  const s = await startVsCode({ vsix, workspace, userSettings: settings(80) });
  t.after(() => s.close());
  const page = s.page;
  await waitForStatusBar(page, STATUS, /Workspace LM/, 60_000);

  const t0 = Date.now();
  await runCommand(page, 'Workspace LM: Train on Workspace');
  await waitForStatusBar(page, STATUS, /indexing|tokenizer|encoding|step \d+/, 30_000);
  const first = await waitForStatusBar(page, STATUS, /step \d+\/\d+ · loss \d/, 60_000);
  await runCommand(page, 'Workspace LM: Show Training');
  const pointsA = await waitFor('chart points', async () => ((await chartPoints(page)) > 0 ? chartPoints(page) : undefined), { timeoutMs: 30_000 });
  await sleep(1500);
  const pointsB = await chartPoints(page);
  assert.ok(pointsB > pointsA, `the chart grows during the run (${pointsA} → ${pointsB})`);
  await screenshot(page, 'training-sidebar');

  await runCommand(page, 'Workspace LM: Pause Training');
  const pausedText = await waitForStatusBar(page, STATUS, /paused at step \d+/, 30_000);
  const pausedStep = Number(/paused at step (\d+)/.exec(pausedText)![1]);
  await sleep(2000);
  assert.match((await statusBarText(page, STATUS)) ?? '', new RegExp(`paused at step ${pausedStep}/`), 'no steps while paused');
  await screenshot(page, 'paused');
  await runCommand(page, 'Workspace LM: Resume Training');
  await waitFor('a step after resuming', async () => (stepOf(await statusBarText(page, STATUS)) > pausedStep ? true : undefined), { timeoutMs: 30_000 });

  const ready = await waitForStatusBar(page, STATUS, /Workspace LM · val \d/, 180_000);
  const trainSeconds = (Date.now() - t0) / 1000;
  await screenshot(page, 'ready');
  // The run learned: the validation loss the ready status shows is below the training loss the
  // status bar showed early in the run.
  const firstLoss = Number(/loss (\d+\.\d+)/.exec(first)![1]);
  const valLoss = Number(/val (\d+\.\d+)/.exec(ready)![1]);
  assert.ok(valLoss < firstLoss, `val loss at the end ${valLoss} < loss at step ${stepOf(first)} ${firstLoss}`);

  await openFile(page, 'scratch/typing.js');
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Enter');
  await typeText(page, PROMPT_LINE);
  await page.keyboard.press('Enter');
  await typeText(page, PROMPT_NEXT);
  const ghost = await waitFor('ghost text', async () => {
    const g = await ghostText(page);
    return g.length > 0 ? g : undefined;
  }, { timeoutMs: 30_000, lastSeen: async () => `line: ${await cursorLineText(page)}` });
  await screenshot(page, 'ghost-text');
  // VS Code auto-closed the quote; the suggestion replaces it, so the ghost text is drawn around
  // that existing character: what shows is the suggestion without it.
  assert.match(ghost, /^lo, " \+ name \+ "!"?;$/);
  await page.keyboard.press('Tab');
  await waitFor('the accepted line', async () => ((await cursorLineText(page)).trim() === ACCEPTED ? true : undefined), {
    timeoutMs: 10_000, lastSeen: async () => await cursorLineText(page),
  });
  t.diagnostic(`training to ready: ${trainSeconds.toFixed(1)} s`);
});

test('reloading the window mid-run resumes the run and keeps the whole chart', { skip: e2eSkip(), timeout: 300_000 }, async (t) => {
  const workspace = makeWorkspace();
  const s = await startVsCode({ vsix, workspace, userSettings: settings(400) });
  t.after(() => s.close());
  const page = s.page;
  await waitForStatusBar(page, STATUS, /Workspace LM/, 60_000);
  await runCommand(page, 'Workspace LM: Train on Workspace');
  await waitFor('step 150', async () => (stepOf(await statusBarText(page, STATUS)) >= 150 ? true : undefined), { timeoutMs: 120_000 });
  await runCommand(page, 'Workspace LM: Show Training');
  const before = await waitFor('chart points', async () => ((await chartPoints(page)) >= 100 ? chartPoints(page) : undefined), { timeoutMs: 30_000 });

  await runCommand(page, 'Developer: Reload Window');
  await sleep(3000);
  // After the reload the run continues from its checkpoint (saved when the window closed).
  const resumed = await waitFor('training again after the reload', async () => {
    const step = stepOf(await statusBarText(page, STATUS));
    return step >= 100 ? step : undefined;
  }, { timeoutMs: 120_000, lastSeen: async () => (await statusBarText(page, STATUS)) ?? '(no status)' });
  await runCommand(page, 'Workspace LM: Show Training');
  const after = await waitFor('the chart with the earlier history', async () => {
    const n = await chartPoints(page);
    return n >= 100 ? n : undefined;
  }, { timeoutMs: 30_000 });
  await screenshot(page, 'after-reload');
  assert.ok(after >= Math.min(before, resumed - 5), `chart after reload has ${after} points (had ${before}; resumed at step ${resumed})`);
  await runCommand(page, 'Workspace LM: Stop Training');
});

test('untrusted workspace: training is refused with an explanation and nothing is spawned', { skip: e2eSkip(), timeout: 180_000 }, async (t) => {
  const workspace = makeWorkspace(2);
  const s = await startVsCode({ vsix, workspace, userSettings: settings(10), trusted: false });
  t.after(() => s.close());
  const page = s.page;
  await waitForStatusBar(page, STATUS, /restricted/, 60_000);
  await runCommand(page, 'Workspace LM: Train on Workspace');
  await waitFor('the refusal notification', async () => {
    const texts = await page.locator('.notifications-toasts .notification-list-item-message').allTextContents();
    return texts.find((x) => /untrusted workspace/.test(x));
  }, { timeoutMs: 20_000 });
  await runCommand(page, 'Workspace LM: Show Training');
  const frame = await sidebarFrame(page);
  await frame.locator('#unavailable').waitFor({ timeout: 20_000 });
  assert.match(await frame.locator('#unavailable').innerText(), /not trusted/);
  await screenshot(page, 'untrusted');
  let servers = '';
  try {
    // This session's extension only (its folder is under s.root): other sessions may run on the machine.
    const own = s.root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    servers = execFileSync('pgrep', ['-af', `${own}/.*workspace-lm\.workspace-lm.*dist/server\.js`], { encoding: 'utf8' });
  } catch {
    servers = ''; // pgrep exits 1 when nothing matches
  }
  assert.equal(servers.trim(), '', 'no Workspace LM server or worker process');
});
