// Host of the "Training" sidebar webview: strict CSP with a nonce, typed messages (validated on
// arrival), and state from the language server — a reopened or reloaded view asks for a snapshot.
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import type { TrainingSnapshot, TrainingStatus } from '../shared/protocol';
import { HostMessage, parseWebviewMessage, WebviewCommand } from '../shared/webviewProtocol';

export interface TrainingViewSource {
  trusted(): boolean;
  /** null when the server is not running (untrusted, or not started yet). */
  snapshot(): Promise<TrainingSnapshot | null>;
  note(): string | undefined;
}

const COMMAND_IDS: Record<WebviewCommand, string> = {
  start: 'workspaceLm.train',
  pause: 'workspaceLm.pause',
  resume: 'workspaceLm.resume',
  stop: 'workspaceLm.stop',
};

export class TrainingViewProvider implements vscode.WebviewViewProvider {
  static readonly viewId = 'workspaceLm.training';
  private view: vscode.WebviewView | null = null;

  constructor(private readonly extensionUri: vscode.Uri, private readonly source: TrainingViewSource) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')] };
    view.webview.html = this.html(view.webview);
    view.webview.onDidReceiveMessage((raw: unknown) => {
      const msg = parseWebviewMessage(raw);
      if (msg === null) return; // not ours: ignore
      if (msg.type === 'ready') void this.sendSnapshot();
      else void vscode.commands.executeCommand(COMMAND_IDS[msg.command]);
    });
    view.onDidDispose(() => {
      if (this.view === view) this.view = null;
    });
  }

  async sendSnapshot(): Promise<void> {
    if (this.view === null) return;
    if (!this.source.trusted()) {
      this.post({ type: 'unavailable', reason: 'This workspace is not trusted (Restricted Mode). Workspace LM does not index, train or run anything here. Trust the workspace to train a model on it.' });
      return;
    }
    const snap = await this.source.snapshot();
    if (snap === null) {
      this.post({ type: 'unavailable', reason: 'The Workspace LM server is not running.' });
      return;
    }
    const note = this.source.note();
    this.post({ type: 'snapshot', snapshot: snap, trusted: true, ...(note !== undefined ? { note } : {}) });
  }

  postStatus(status: TrainingStatus): void {
    this.post({ type: 'status', status });
  }

  reveal(): void {
    void vscode.commands.executeCommand(`${TrainingViewProvider.viewId}.focus`);
  }

  private post(m: HostMessage): void {
    void this.view?.webview.postMessage(m);
  }

  private html(webview: vscode.Webview): string {
    const nonce = randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'training.css'));
    const csp = [`default-src 'none'`, `style-src ${webview.cspSource}`, `img-src ${webview.cspSource} data:`, `script-src 'nonce-${nonce}'`].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link href="${style}" rel="stylesheet">
<title>Workspace LM Training</title>
</head>
<body>
<div id="app" aria-live="polite"></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }
}
