// What the status bar says for a state: text, tooltip and look. Pure (no vscode import), so it
// is unit-tested (test/status.test.ts) and the e2e tests can rely on its wording.
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
      const step = `step ${t.step ?? 0}/${t.totalSteps ?? '?'}`;
      return {
        text: `$(pulse) ${step}${loss} · ETA ${duration(t.etaSec)}`,
        tooltip: `Workspace LM is training\n${step}\nloss ${t.loss?.toFixed(4) ?? '-'}, val loss ${t.valLoss?.toFixed(4) ?? '-'}\n${Math.round(t.tokensPerSec ?? 0)} tokens/s, elapsed ${duration(t.elapsedSec)}, ETA ${duration(t.etaSec)}\nClick to show the training view.`,
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
