// Entry of the language server process (dist/server.js). The VS Code extension starts it over
// node IPC; `workspace-lm serve --stdio` runs the same server over stdio for other editors.
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { startLanguageServer } from './languageServer';

// stdout may be the LSP channel: nothing else may write there.
console.log = console.error;
startLanguageServer(createConnection(ProposedFeatures.all));
