// The extension's state: the language client (started on demand), the last training and model
// status the server reported, the status bar and the sidebar drawn from them. main.ts creates one
// per activation; the commands act on it.
import * as vscode from 'vscode';
import * as path from 'node:path';
import type { ModelStatusParams, TrainingStatus } from '../shared/protocol';
import { WorkspaceLmClient } from './client';
import { Config, settingsSchema } from './config';
import { StatusBar } from './statusBar';
import { TrainingViewProvider } from './trainingView';

/** Remembered per workspace: a training run is active (a reload or restart mid-run resumes it). */
const ACTIVE_KEY = 'workspaceLm.trainingActive';

export class ExtensionState implements vscode.Disposable {
  readonly statusBar = new StatusBar();
  readonly view: TrainingViewProvider;
  /** Where this workspace's model lives (context.storageUri), or null without a workspace. */
  readonly runDir: string | null;
  /** The `workspaceLm.*` settings, as declared in this extension's package.json. */
  readonly config: Config;
  /** The running language client, or null before it started (and in an untrusted workspace). */
  client: WorkspaceLmClient | null = null;
  training: TrainingStatus = { state: 'idle', message: 'not trained yet' };
  model: ModelStatusParams | null = null;
  private starting: Promise<WorkspaceLmClient | null> | null = null;
  private shuttingDown = false;

  constructor(private readonly context: vscode.ExtensionContext, readonly output: vscode.LogOutputChannel) {
    this.config = new Config(settingsSchema(context.extension.packageJSON), vscode.workspace);
    const storage = context.storageUri;
    this.runDir = storage !== undefined && storage.scheme === 'file' ? path.join(storage.fsPath, 'run') : null;
    this.view = new TrainingViewProvider(context.extensionUri, {
      trusted: () => vscode.workspace.isTrusted,
      snapshot: async () => {
        const client = await this.ensureClient();
        return client === null ? null : client.snapshot();
      },
      note: () => (this.runDir === null ? 'Open a folder to train a model on it.' : undefined),
    });
  }

  /** The client, started if needed; null where the extension must not run anything (untrusted, no folder). */
  ensureClient(): Promise<WorkspaceLmClient | null> {
    if (!vscode.workspace.isTrusted || this.runDir === null) return Promise.resolve(null);
    if (this.client !== null) return Promise.resolve(this.client);
    this.starting ??= this.startClient(this.runDir).finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  private async startClient(runDir: string): Promise<WorkspaceLmClient | null> {
    const client = new WorkspaceLmClient(this.context, runDir, this.config, this.output, {
      onTrainingStatus: (s) => this.onTrainingStatus(s),
      onModelStatus: (s) => this.onModelStatus(s),
    });
    try {
      await client.start();
      this.client = client;
      return client;
    } catch (e) {
      this.output.error(`could not start the Workspace LM server: ${(e as Error).message}`);
      this.onTrainingStatus({ state: 'error', message: `the Workspace LM server did not start: ${(e as Error).message}` });
      return null;
    }
  }

  onTrainingStatus(s: TrainingStatus): void {
    this.training = s;
    const active = s.state === 'preparing' || s.state === 'training' || s.state === 'paused';
    // (Not while shutting down: the server stops the run then, and it must resume next time.)
    const ws = this.context.workspaceState;
    if (!this.shuttingDown && s.state !== 'stopping' && ws.get<boolean>(ACTIVE_KEY, false) !== active) void ws.update(ACTIVE_KEY, active);
    this.redraw();
    this.view.postStatus(s);
  }

  onModelStatus(s: ModelStatusParams): void {
    this.model = s;
    this.redraw();
  }

  /** Whether a run was active when the window last closed (startUp resumes it). */
  get interruptedRun(): boolean {
    return this.context.workspaceState.get<boolean>(ACTIVE_KEY, false);
  }

  /** The status bar, from the one state value it is drawn from. */
  redraw(): void {
    this.statusBar.update({ trusted: vscode.workspace.isTrusted, training: this.training, model: this.model, completionsEnabled: this.config.completionsEnabled });
  }

  /** Deactivation: stop the server, which saves a checkpoint of a running training first. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    await this.client?.stop();
  }

  dispose(): void {
    this.statusBar.dispose();
  }
}

