// The language client: starts dist/server.js (the process that trains and completes) over node
// IPC and exposes typed calls. The extension host itself does no training or inference work.
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions, TransportKind } from 'vscode-languageclient/node';
import {
  DeleteModelRequest, ExportBundleRequest, ExportBundleResult, ImportModelRequest, ImportModelResult, InitializationOptions, ModelStatusNotification, ModelStatusParams,
  PauseTrainingRequest, ResumeTrainingRequest, StartTrainingParams, StartTrainingRequest, StopTrainingRequest, TrainingSnapshot,
  TrainingSnapshotRequest, TrainingStatus, TrainingStatusNotification, UpdateSettingsNotification,
} from '../shared/protocol';
import type { Config } from './config';

export interface ServerEvents {
  onTrainingStatus(s: TrainingStatus): void;
  onModelStatus(s: ModelStatusParams): void;
}

export class WorkspaceLmClient {
  private readonly client: LanguageClient;

  constructor(context: vscode.ExtensionContext, readonly runDir: string, private readonly config: Config, output: vscode.LogOutputChannel, events: ServerEvents) {
    const module = context.asAbsolutePath('dist/server.js');
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc },
      debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy'] } },
    };
    const init: InitializationOptions = { modelDir: runDir, settings: config.completion };
    const clientOptions: LanguageClientOptions = {
      // Every file-backed document: the model is trained on the workspace's own languages.
      documentSelector: [{ scheme: 'file' }],
      initializationOptions: init,
      outputChannel: output,
      // A crash of the server must not nag on every keystroke: restart quietly, log, show in the status bar.
      revealOutputChannelOn: 4, // RevealOutputChannelOn.Never
    };
    this.client = new LanguageClient('workspaceLm', 'Workspace LM', serverOptions, clientOptions);
    this.client.onNotification(TrainingStatusNotification, (s) => events.onTrainingStatus(s));
    this.client.onNotification(ModelStatusNotification, (s) => events.onModelStatus(s));
  }

  start(): Promise<void> {
    return this.client.start();
  }

  async stop(): Promise<void> {
    if (this.client.isRunning()) await this.client.stop(15_000);
  }

  startTraining(p: StartTrainingParams): Promise<TrainingStatus> {
    return this.client.sendRequest(StartTrainingRequest, p);
  }

  pause(): Promise<TrainingStatus> {
    return this.client.sendRequest(PauseTrainingRequest);
  }

  resume(): Promise<TrainingStatus> {
    return this.client.sendRequest(ResumeTrainingRequest);
  }

  stopTraining(): Promise<TrainingStatus> {
    return this.client.sendRequest(StopTrainingRequest);
  }

  snapshot(): Promise<TrainingSnapshot> {
    return this.client.sendRequest(TrainingSnapshotRequest, { outDir: this.runDir });
  }

  exportBundle(toDir: string): Promise<ExportBundleResult> {
    return this.client.sendRequest(ExportBundleRequest, { runDir: this.runDir, toDir });
  }

  /** Stops any run, unloads the served model and deletes the run folder (all in the server). */
  deleteModel(): Promise<void> {
    return this.client.sendRequest(DeleteModelRequest, { runDir: this.runDir });
  }

  importModel(srcDir: string): Promise<ImportModelResult> {
    return this.client.sendRequest(ImportModelRequest, { srcDir, runDir: this.runDir });
  }

  updateSettings(): void {
    void this.client.sendNotification(UpdateSettingsNotification, this.config.completion);
  }
}
