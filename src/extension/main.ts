// Extension entry: wires the language client, the status bar, the sidebar and the commands. It
// does no heavy work: training and completions run in the language server process.
import * as vscode from 'vscode';
import * as path from 'node:path';
import type { ModelStatusParams, TrainingStatus } from '../shared/protocol';
import { WorkspaceLmClient } from './client';
import { registerCommands } from './commands';
import { config } from './config';
import { StatusBar } from './statusBar';
import { TrainingViewProvider } from './trainingView';

export interface ExtensionState {
  output: vscode.LogOutputChannel;
  view: TrainingViewProvider;
  client: WorkspaceLmClient | null;
  /** Where this workspace's model lives (context.storageUri), or null without a workspace. */
  runDir: string | null;
  training: TrainingStatus;
  ensureClient(): Promise<WorkspaceLmClient | null>;
  onTrainingStatus(s: TrainingStatus): void;
  waitUntilIdle(): Promise<void>;
}

let state: ExtensionState | null = null;
const ACTIVE_KEY = 'workspaceLm.trainingActive';
let deactivating = false;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Workspace LM', { log: true });
  const statusBar = new StatusBar();
  context.subscriptions.push(output, statusBar);
  let model: ModelStatusParams | null = null;
  let starting: Promise<WorkspaceLmClient | null> | null = null;
  const idleWaiters: (() => void)[] = [];

  const redraw = (): void => statusBar.update({ trusted: vscode.workspace.isTrusted, training: st.training, model, completionsEnabled: config.completionsEnabled() });

  const st: ExtensionState = {
    output,
    view: null as unknown as TrainingViewProvider,
    client: null,
    runDir: context.storageUri !== undefined && context.storageUri.scheme === 'file' ? path.join(context.storageUri.fsPath, 'run') : null,
    training: { state: 'idle', message: 'not trained yet' },
    ensureClient: async () => {
      if (!vscode.workspace.isTrusted || st.runDir === null) return null;
      if (st.client !== null) return st.client;
      starting ??= (async () => {
        const client = new WorkspaceLmClient(context, st.runDir!, output, {
          onTrainingStatus: (s) => st.onTrainingStatus(s),
          onModelStatus: (s) => {
            model = s;
            redraw();
          },
        });
        try {
          await client.start();
          st.client = client;
          return client;
        } catch (e) {
          output.appendLine(`could not start the Workspace LM server: ${(e as Error).message}`);
          st.onTrainingStatus({ state: 'error', message: `the Workspace LM server did not start: ${(e as Error).message}` });
          return null;
        } finally {
          starting = null;
        }
      })();
      return starting;
    },
    onTrainingStatus: (s) => {
      st.training = s;
      // Remembered per workspace: a reload or restart mid-run resumes the run (see startUp).
      const active = s.state === 'preparing' || s.state === 'training' || s.state === 'paused';
      // (Not while shutting down: the server stops the run then, and it must resume next time.)
      if (!deactivating && s.state !== 'stopping' && context.workspaceState.get<boolean>(ACTIVE_KEY, false) !== active) void context.workspaceState.update(ACTIVE_KEY, active);
      redraw();
      st.view.postStatus(s);
      if (s.state === 'idle' || s.state === 'ready' || s.state === 'error') idleWaiters.splice(0).forEach((f) => f());
    },
    waitUntilIdle: () => new Promise<void>((resolve) => {
      if (st.training.state === 'idle' || st.training.state === 'ready' || st.training.state === 'error') resolve();
      else idleWaiters.push(resolve);
    }),
  };
  state = st;

  st.view = new TrainingViewProvider(context.extensionUri, {
    trusted: () => vscode.workspace.isTrusted,
    snapshot: async () => {
      const client = await st.ensureClient();
      return client === null ? null : client.snapshot();
    },
    note: () => (st.runDir === null ? 'Open a folder to train a model on it.' : undefined),
  });
  context.subscriptions.push(vscode.window.registerWebviewViewProvider(TrainingViewProvider.viewId, st.view));
  registerCommands(context, st);

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('workspaceLm')) {
        st.client?.updateSettings();
        redraw();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      redraw();
      void startUp();
    }),
  );

  // Retrain on changes (opt-in): after edits settle, continue training from the last checkpoint.
  let retrainTimer: NodeJS.Timeout | null = null;
  const watcher = vscode.workspace.createFileSystemWatcher('**/*');
  const onChange = (uri: vscode.Uri): void => {
    if (!config.retrainOnChanges() || uri.fsPath.startsWith(st.runDir ?? '\u0000')) return;
    if (retrainTimer !== null) clearTimeout(retrainTimer);
    retrainTimer = setTimeout(() => {
      if (st.training.state === 'ready' || st.training.state === 'idle') void vscode.commands.executeCommand('workspaceLm.retrain');
    }, 60_000);
  };
  context.subscriptions.push(watcher, watcher.onDidChange(onChange), watcher.onDidCreate(onChange), watcher.onDidDelete(onChange));

  const startUp = async (): Promise<void> => {
    const client = await st.ensureClient();
    if (client === null) return;
    const interrupted = context.workspaceState.get<boolean>(ACTIVE_KEY, false);
    const snap = await client.snapshot();
    st.onTrainingStatus(snap.status);
    if (interrupted) {
      // The window was reloaded (or the editor closed) mid-run: continue from its checkpoint.
      output.info('resuming the training run that was active when the window closed');
      void vscode.commands.executeCommand('workspaceLm.train');
    } else if (config.autoTrainOnOpen() && snap.status.state === 'idle') {
      void vscode.commands.executeCommand('workspaceLm.train');
    }
  };
  redraw();
  void startUp();
}

export async function deactivate(): Promise<void> {
  deactivating = true;
  // The server saves a checkpoint of a running training on shutdown; give it the time to.
  await state?.client?.stop();
}
