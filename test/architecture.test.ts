// The layer rules of docs/architecture.md, checked on the source: which folder may import which,
// and no import cycle between files. A folder is a process or a layer; an import that crosses
// the grain fails here, with the file and the import named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = join(__dirname, '..');
const src = join(root, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return n === 'assembly' ? [] : files(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

interface Import { from: string; spec: string; typeOnly: boolean; target: string | null }

/** Every import and re-export of a file (`import type` marked), relative ones resolved to files. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const out: Import[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const spec = m[3]!;
    let target: string | null = null;
    if (spec.startsWith('.')) {
      const base = resolve(dirname(file), spec);
      target = [base + '.ts', join(base, 'index.ts')].find((p) => { try { return statSync(p).isFile(); } catch { return false; } }) ?? null;
      assert.ok(target !== null, `${relative(root, file)}: cannot resolve ${spec}`);
    }
    out.push({ from: file, spec, typeOnly: m[2] !== undefined, target });
  }
  return out;
}

const layerOf = (file: string): string => relative(src, file).split('/')[0]!;

/** What each folder may import besides itself: the table in docs/architecture.md. */
const ALLOWED: Record<string, string[]> = {
  ml: [],
  shared: ['ml'],
  runtime: ['ml'],
  run: ['ml'],
  corpus: ['ml', 'run', 'shared'],
  training: ['ml', 'run', 'corpus', 'runtime', 'shared'],
  completion: ['ml', 'run', 'runtime', 'shared'],
  eval: ['ml', 'run', 'corpus', 'completion'],
  server: ['ml', 'run', 'corpus', 'training', 'completion', 'eval', 'runtime', 'shared'],
  worker: ['ml', 'corpus', 'runtime', 'shared'],
  extension: ['shared'],
  cli: ['ml', 'run', 'corpus', 'training', 'completion', 'eval', 'runtime', 'shared'],
};
const all = files(src);
const imports = all.flatMap(importsOf);

test('layer rules: ml is pure, shared holds only messages, the extension is thin, nothing below the server imports it', () => {
  const problems: string[] = [];
  const say = (i: Import, why: string): void => { problems.push(`${relative(root, i.from)} imports ${i.spec}: ${why}`); };
  for (const i of imports) {
    const from = layerOf(i.from);
    const to = i.target === null ? null : layerOf(i.target);
    if (ALLOWED[from] === undefined) say(i, `${from}/ is a folder docs/architecture.md does not describe`);
    else if (to !== null && to !== from && !ALLOWED[from]!.includes(to)) say(i, `${from}/ may import ${ALLOWED[from]!.join(', ') || 'nothing else'}`);
    if (from === 'ml') {
      if (to !== null && to !== 'ml') say(i, 'ml imports no other layer');
      if (to === null && /^(node:)?(fs|child_process|worker_threads|net|http)$|^vscode/.test(i.spec)) say(i, 'ml is the pure engine: no file system, processes or editor');
    }
    if (from === 'shared') {
      if (to !== null && to !== 'shared' && !(to === 'ml' && i.typeOnly)) say(i, 'shared imports nothing but ml types');
      if (to === null && !/^vscode-(jsonrpc|languageserver-protocol)/.test(i.spec)) say(i, 'shared declares messages only');
    }
    if (from === 'extension' && to !== null && to !== 'extension' && to !== 'shared') say(i, 'the extension imports only shared/ (no ml, server or run layer)');
    if (from !== 'server' && to === 'server') say(i, 'only the language server process imports server/');
    if (from !== 'extension' && to === 'extension') say(i, 'nothing imports the extension host');
    if (from !== 'cli' && to === 'cli') say(i, 'nothing imports the CLI');
  }
  assert.deepEqual(problems, []);
});

test('no import cycle between files', () => {
  const graph = new Map<string, string[]>(all.map((f) => [f, []]));
  for (const i of imports) if (i.target !== null) graph.get(i.from)!.push(i.target);
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of graph.get(f) ?? []) {
      if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].map((p) => relative(src, p)).join(' -> '));
      else if (state.get(t) === undefined) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of all) if (state.get(f) === undefined) visit(f);
  assert.deepEqual(cycles, []);
});

test('the run directory\'s name is spelled in one module', () => {
  const spelled = all.filter((f) => /['"`]\.workspace-lm['"`/]/.test(readFileSync(f, 'utf8'))).map((f) => relative(root, f));
  assert.deepEqual(spelled, ['src/run/layout.ts']);
});
