// Entry of the language server process (dist/server.js). The VS Code extension starts it over
// node IPC; `workspace-lm serve --stdio [--checkpoint DIR] [--poll-ms N]` starts it over stdio for
// other editors (the CLI checks the flags and passes them on).
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { startLanguageServer } from './languageServer';

// stdout may be the LSP channel: nothing else may write there.
console.log = console.error;
// Not strict: vscode-languageserver reads its own flags (--stdio, --node-ipc, --clientProcessId) from argv too.
const { values } = parseArgs({ options: { checkpoint: { type: 'string' }, 'poll-ms': { type: 'string' } }, strict: false, allowPositionals: true });
const checkpoint = typeof values.checkpoint === 'string' ? path.resolve(values.checkpoint) : undefined;
const pollMs = typeof values['poll-ms'] === 'string' ? Number(values['poll-ms']) : undefined;
const stdio = process.argv.includes('--stdio');
startLanguageServer(createConnection(ProposedFeatures.all), {
  ...(checkpoint !== undefined ? { modelDir: checkpoint } : {}),
  ...(pollMs !== undefined && Number.isFinite(pollMs) ? { pollMs } : {}),
  // Over stdio the client may not show LSP log messages: stderr is what editors keep.
  ...(stdio ? { log: (m: string) => process.stderr.write(`workspace-lm: ${m}\n`) } : {}),
});
