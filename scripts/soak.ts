// npm run soak [-- --minutes N] [--folder DIR] [--preset small]
//
// The language server under a long mixed load: training runs continuously (restarted when a run
// ends) while a client asks for an inline completion every 50 ms on a document being "typed".
// Samples the server process's RSS every 10 s and reports it over time, the completion latency,
// and errors. Last line: the RSS slope after warm-up (MB/min) and the error count.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import type { TrainingStatus } from '../src/shared/protocol';

const root = path.join(__dirname, '..');
const { values } = parseArgs({ args: process.argv.slice(2), options: { minutes: { type: 'string' }, folder: { type: 'string' }, preset: { type: 'string' } } });
const minutes = Number(values.minutes ?? 10);
const folder = path.resolve(values.folder ?? path.join(root, 'src'));
const preset = values.preset ?? 'small';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-soak-'));
const outDir = path.join(tmp, 'run');

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function main(): Promise<void> {
  const server = spawn(process.execPath, [path.join(root, 'dist', 'cli.js'), 'serve', '--stdio', '--poll-ms', '1000']);
  let exitCode: number | null | undefined;
  server.on('exit', (c) => { exitCode = c; });
  server.stderr.on('data', () => undefined);
  const conn = createMessageConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
  let state = 'idle' as TrainingStatus['state'];
  let runs = 0;
  conn.onNotification('workspaceLm/trainingStatus', (s: TrainingStatus) => { state = s.state; });
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: { textDocument: { inlineCompletion: {} } }, initializationOptions: { modelDir: outDir, settings: { debounceMs: 0 } } });
  await conn.sendNotification('initialized', {});
  const start = async (): Promise<void> => {
    runs++;
    await conn.sendRequest('workspaceLm/startTraining', { folders: [folder], outDir, preset, threads: 1, maxMinutes: Math.max(1, minutes / 3), resume: false });
  };
  await start();

  // The "typed" document: a source file revealed a few characters per request, then again.
  const source = readdirSync(folder, { recursive: true }).map(String).filter((f) => /\.(ts|js|c|h|py)$/.test(f)).map((f) => readFileSync(path.join(folder, f), 'utf8')).join('\n').slice(0, 200_000);
  const uri = pathToFileURL(path.join(tmp, 'typing.ts')).href;
  let version = 1;
  await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'typescript', version, text: '' } });

  const t0 = Date.now();
  const end = t0 + minutes * 60_000;
  const samples: { min: number; rss: number }[] = [];
  const latencies: number[] = [];
  let errors = 0;
  let answered = 0;
  let suggested = 0;
  let cursor = 0;
  let nextSample = t0;
  console.log(`soak: ${minutes} min, training (${preset}) on ${folder} + a completion request every 50 ms\n`);
  console.log(`${'minute'.padStart(7)}${'RSS MB'.padStart(9)}${'requests'.padStart(10)}${'with text'.padStart(11)}${'p50 ms'.padStart(8)}${'errors'.padStart(8)}  training`);
  while (Date.now() < end) {
    if (exitCode !== undefined) throw new Error(`the server exited (${exitCode})`);
    if (state === 'ready' || state === 'error') await start();
    if (Date.now() >= nextSample) {
      const min = (Date.now() - t0) / 60_000;
      const rss = rssMb(server.pid!);
      samples.push({ min, rss });
      const recent = latencies.slice(-200).sort((a, b) => a - b);
      console.log(`${min.toFixed(1).padStart(7)}${rss.toFixed(0).padStart(9)}${String(answered).padStart(10)}${String(suggested).padStart(11)}${(recent[Math.floor(recent.length / 2)] ?? 0).toFixed(1).padStart(8)}${String(errors).padStart(8)}  ${state} (run ${runs})`);
      nextSample += 10_000;
    }
    cursor = (cursor + 1 + Math.floor(Math.random() * 4)) % source.length;
    const text = source.slice(0, cursor);
    await conn.sendNotification('textDocument/didChange', { textDocument: { uri, version: ++version }, contentChanges: [{ text }] });
    const lines = text.split('\n');
    const t = performance.now();
    try {
      const r = await conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri }, position: { line: lines.length - 1, character: lines[lines.length - 1]!.length }, context: { triggerKind: 1 } }) as unknown[] | null;
      answered++;
      if (r !== null && r.length > 0) suggested++;
      latencies.push(performance.now() - t);
    } catch {
      errors++;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Slope of RSS over the second half (least squares), in MB per minute: the first half covers
  // the warm-up (first model loaded, JIT, the first training runs' allocations).
  const warm = samples.filter((s) => s.min >= minutes / 2);
  const mx = warm.reduce((a, s) => a + s.min, 0) / warm.length;
  const my = warm.reduce((a, s) => a + s.rss, 0) / warm.length;
  const slope = warm.reduce((a, s) => a + (s.min - mx) * (s.rss - my), 0) / Math.max(1e-9, warm.reduce((a, s) => a + (s.min - mx) ** 2, 0));
  const all = latencies.sort((a, b) => a - b);
  console.log(`\n${answered} completion requests (${suggested} with a suggestion), p50 ${all[Math.floor(all.length / 2)]?.toFixed(1)} ms, p95 ${all[Math.floor(all.length * 0.95)]?.toFixed(1)} ms; ${runs} training runs`);
  console.log(`RSS ${Math.min(...warm.map((s) => s.rss)).toFixed(0)}–${Math.max(...warm.map((s) => s.rss)).toFixed(0)} MB over the second half`);
  console.log(`RSS slope over the second half: ${slope.toFixed(2)} MB/min; errors: ${errors}`);
  await conn.sendRequest('workspaceLm/stopTraining').catch(() => undefined);
  conn.dispose();
  server.kill();
}

main().finally(() => rmSync(tmp, { recursive: true, force: true })).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
