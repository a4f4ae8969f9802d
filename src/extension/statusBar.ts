// The status bar item, drawn from one state value by one function, at most a few times a second.
import * as vscode from 'vscode';
import type { ModelStatusParams, TrainingStatus } from '../shared/protocol';

export interface StatusState {
  trusted: boolean;
  training: TrainingStatus;
  model: ModelStatusParams | null;
  completionsEnabled: boolean;
}

function duration(sec: number | undefined): string {
  if (sec === undefined || !Number.isFinite(sec)) return '--:--';
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

/** Text, tooltip and look for a state. Pure, so it is easy to test and to reason about. */
export function describeStatus(st: StatusState): { text: string; tooltip: string; error: boolean; warning: boolean } {
  if (!st.trusted) return { text: '$(shield) Workspace LM: restricted', tooltip: 'Restricted Mode: Workspace LM does not index, train or run anything in an untrusted workspace.', error: false, warning: false };
  const t = st.training;
  const off = st.completionsEnabled ? '' : ' (completions off)';
  switch (t.state) {
    case 'preparing':
      return { text: `$(sync~spin) ${t.phase ?? 'preparing'} ${Math.round((t.phaseFraction ?? 0) * 100)}%`, tooltip: `Workspace LM: ${t.message}`, error: false, warning: false };
    case 'training': {
      const loss = t.loss !== undefined ? ` · loss ${t.loss.toFixed(2)}` : '';
      return {
        text: `$(pulse) step ${t.step ?? 0}/${t.totalSteps ?? '?'}${loss} · ETA ${duration(t.etaSec)}`,
        tooltip: `Workspace LM is training\nstep ${t.step}/${t.totalSteps}\nloss ${t.loss?.toFixed(4) ?? '-'}, val loss ${t.valLoss?.toFixed(4) ?? '-'}\n${Math.round(t.tokensPerSec ?? 0)} tokens/s, elapsed ${duration(t.elapsedSec)}, ETA ${duration(t.etaSec)}\nClick to show the training view.`,
        error: false, warning: false,
      };
    }
    case 'paused':
      return { text: `$(debug-pause) paused at step ${t.step ?? 0}/${t.totalSteps ?? '?'}`, tooltip: 'Workspace LM: training is paused. Resume from the Training view or the command palette.', error: false, warning: false };
    case 'stopping':
      return { text: '$(sync~spin) stopping…', tooltip: t.message, error: false, warning: false };
    case 'error':
      return { text: '$(error) Workspace LM', tooltip: `Workspace LM: ${t.message}\nClick for details.`, error: true, warning: false };
    default: {
      const m = st.model;
      if (m?.state === 'ready' && m.model !== undefined) {
        const val = m.model.valLoss !== null ? ` · val ${m.model.valLoss.toFixed(2)}` : '';
        return { text: `$(check) Workspace LM${val}${off}`, tooltip: `Workspace LM: model ready (step ${m.model.step ?? '?'})${off}\n${m.message}`, error: false, warning: false };
      }
      if (m?.state === 'error') return { text: '$(warning) Workspace LM', tooltip: m.message, error: false, warning: true };
      return { text: `$(circuit-board) Workspace LM${off}`, tooltip: 'Workspace LM: no model yet. Run "Workspace LM: Train on Workspace".', error: false, warning: false };
    }
  }
}

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
