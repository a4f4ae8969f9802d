// The status bar item, drawn from one state value by one function, at most a few times a second.
import * as vscode from 'vscode';
import { describeStatus, StatusState } from './statusText';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private pending: StatusState | null = null;
  private timer: NodeJS.Timeout | null = null;
  private last = 0;

  constructor() {
    this.item = vscode.window.createStatusBarItem('workspaceLm.status', vscode.StatusBarAlignment.Left, 10);
    this.item.name = 'Workspace LM';
    this.item.command = 'workspaceLm.showTraining';
    this.item.show();
  }

  /** Schedules a redraw: at most 4 per second, the latest state wins. */
  update(st: StatusState): void {
    this.pending = st;
    const wait = 250 - (Date.now() - this.last);
    if (wait <= 0) this.draw();
    else this.timer ??= setTimeout(() => this.draw(), wait);
  }

  private draw(): void {
    this.timer = null;
    this.last = Date.now();
    if (this.pending === null) return;
    const d = describeStatus(this.pending);
    this.item.text = d.text;
    this.item.tooltip = d.tooltip;
    this.item.backgroundColor = d.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : d.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  dispose(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.item.dispose();
  }
}
