// Extension entry: wires the extension's state (language client, status bar, sidebar) to the
// commands and the editor's events. It does no heavy work: training and completions run in the
// language server process.
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { ExtensionState } from './extensionState';
import { TrainingViewProvider } from './trainingView';

let state: ExtensionState | null = null;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Workspace LM', { log: true });
  const st = new ExtensionState(context, output);
  state = st;
  context.subscriptions.push(output, st, vscode.window.registerWebviewViewProvider(TrainingViewProvider.viewId, st.view));
  registerCommands(context, st);

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('workspaceLm')) {
        st.client?.updateSettings();
        st.redraw();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      st.redraw();
      void startUp(st);
    }),
  );

  // Retrain on changes (opt-in): after edits settle, continue training from the last checkpoint.
  let retrainTimer: NodeJS.Timeout | null = null;
  const watcher = vscode.workspace.createFileSystemWatcher('**/*');
  const onChange = (uri: vscode.Uri): void => {
    if (!st.config.retrainOnChanges || uri.fsPath.startsWith(st.runDir ?? '\u0000')) return;
    if (retrainTimer !== null) clearTimeout(retrainTimer);
    retrainTimer = setTimeout(() => {
      if (st.training.state === 'ready' || st.training.state === 'idle') void vscode.commands.executeCommand('workspaceLm.retrain');
    }, 60_000);
  };
  context.subscriptions.push(watcher, watcher.onDidChange(onChange), watcher.onDidCreate(onChange), watcher.onDidDelete(onChange));

  st.redraw();
  void startUp(st);
}

/** Starts the server (trusted workspace with a folder) and resumes or auto-starts training. */
async function startUp(st: ExtensionState): Promise<void> {
  const client = await st.ensureClient();
  if (client === null) return;
  const interrupted = st.interruptedRun;
  const snap = await client.snapshot();
  st.onTrainingStatus(snap.status);
  if (interrupted) {
    // The window was reloaded (or the editor closed) mid-run: continue from its checkpoint.
    st.output.info('resuming the training run that was active when the window closed');
    void vscode.commands.executeCommand('workspaceLm.train');
  } else if (st.config.autoTrainOnOpen && snap.status.state === 'idle') {
    void vscode.commands.executeCommand('workspaceLm.train');
  }
}

export async function deactivate(): Promise<void> {
  await state?.shutdown();
}
