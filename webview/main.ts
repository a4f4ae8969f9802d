// The Training sidebar: live loss chart, run figures, phase progress, corpus and model summary,
// and the Start/Pause/Resume/Stop buttons. All data comes from the extension host (which asks the
// language server), so a hidden-and-shown or reloaded view redraws the whole history.

import type { LossPoint, TrainingSnapshot, TrainingStatus, ValPoint } from '../src/shared/protocol';
import type { HostMessage, WebviewMessage, WebviewCommand } from '../src/shared/webviewProtocol';
import { drawLossChart } from './lossChart';

interface VsCodeApi {
  postMessage(m: WebviewMessage): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
/** Only UI preferences persist in the webview; the data is always fetched from the host. */
const prefs = { logScale: false, ...((vscode.getState() as { logScale?: boolean } | null) ?? {}) };

let snapshot: TrainingSnapshot | null = null;
let history: LossPoint[] = [];
let evals: ValPoint[] = [];
let unavailable: string | null = null;

const app = document.getElementById('app')!;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtDuration(sec: number | undefined): string {
  if (sec === undefined || !Number.isFinite(sec)) return '–';
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

function fmtBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} KB` : `${n} B`;
}

function button(label: string, command: WebviewCommand, enabled: boolean, primary = false): HTMLButtonElement {
  const b = el('button', { class: primary ? 'primary' : 'secondary', 'data-command': command }, label);
  b.disabled = !enabled;
  b.addEventListener('click', () => vscode.postMessage({ type: 'command', command }));
  return b;
}

function stat(label: string, value: string): HTMLElement {
  const d = el('div', { class: 'stat' });
  d.append(el('div', { class: 'label' }, label), el('div', { class: 'value' }, value));
  return d;
}

function render(): void {
  app.replaceChildren();
  if (unavailable !== null) {
    app.append(el('p', { class: 'notice', id: 'unavailable' }, unavailable));
    return;
  }
  if (snapshot === null) {
    app.append(el('p', { class: 'muted' }, 'Loading…'));
    return;
  }
  const s: TrainingStatus = snapshot.status;
  const header = el('div', { class: 'header' });
  header.append(el('span', { class: `state state-${s.state}`, id: 'state' }, s.state), el('span', { class: 'message', id: 'message' }, s.message));
  app.append(header);

  if (s.state === 'preparing') {
    const bar = el('div', { class: 'progress', role: 'progressbar', 'aria-valuenow': String(Math.round((s.phaseFraction ?? 0) * 100)) });
    const fill = el('div', { class: 'fill' });
    fill.style.width = `${Math.round((s.phaseFraction ?? 0) * 100)}%`;
    bar.append(fill);
    app.append(el('div', { class: 'phase' }, `${s.phase ?? ''}`), bar);
  }

  const buttons = el('div', { class: 'buttons' });
  const active = s.state === 'training' || s.state === 'preparing' || s.state === 'paused';
  buttons.append(
    button('Start', 'start', !active && s.state !== 'stopping', true),
    s.state === 'paused' ? button('Resume', 'resume', true) : button('Pause', 'pause', s.state === 'training'),
    button('Stop', 'stop', active),
  );
  app.append(buttons);

  const stats = el('div', { class: 'stats', id: 'stats' });
  stats.append(
    stat('step', s.step !== undefined ? `${s.step}${s.totalSteps !== undefined ? ` / ${s.totalSteps}` : ''}` : '–'),
    stat('loss', s.loss !== undefined ? s.loss.toFixed(3) : '–'),
    stat('val loss', s.valLoss !== undefined ? s.valLoss.toFixed(3) : '–'),
    stat('tokens/s', s.tokensPerSec !== undefined ? Math.round(s.tokensPerSec).toLocaleString() : '–'),
    stat('elapsed', fmtDuration(s.elapsedSec)),
    stat('ETA', s.state === 'training' ? fmtDuration(s.etaSec) : '–'),
  );
  app.append(stats);

  const chartBox = el('div', { class: 'chart' });
  const canvas = el('canvas', { id: 'loss-chart', 'aria-label': 'training and validation loss by step' });
  chartBox.append(canvas);
  const legend = el('div', { class: 'legend' });
  const log = el('input', { type: 'checkbox', id: 'log-scale' }) as HTMLInputElement;
  log.checked = prefs.logScale;
  log.addEventListener('change', () => {
    prefs.logScale = log.checked;
    vscode.setState(prefs);
    drawChart();
  });
  const logLabel = el('label', { for: 'log-scale' }, 'log scale');
  legend.append(el('span', { class: 'key train' }, 'train loss'), el('span', { class: 'key val' }, 'val loss'), log, logLabel);
  app.append(chartBox, legend);

  const c = snapshot.corpus;
  if (c !== undefined) {
    const sec = el('details', { open: '' });
    sec.append(el('summary', {}, 'Corpus'));
    const skipped = Object.entries(c.skipped).map(([k, v]) => `${k}: ${v.files}`).join(', ');
    sec.append(el('p', {}, `${c.files} files, ${fmtBytes(c.bytes)} — ${c.trainFiles} for training, ${c.valFiles} held out.`));
    if (skipped) sec.append(el('p', { class: 'muted' }, `Skipped: ${skipped}.`));
    const secrets = c.secrets !== undefined ? Object.values(c.secrets).reduce((a, b) => a + b, 0) : 0;
    if (secrets > 0) sec.append(el('p', { class: 'muted' }, `${secrets} secrets redacted before training.`));
    if (snapshot.dataset !== undefined) sec.append(el('p', { class: 'muted' }, `${snapshot.dataset.trainTokens.toLocaleString()} training tokens, ${snapshot.dataset.valTokens.toLocaleString()} validation tokens.`));
    app.append(sec);
  }
  const ev = snapshot.eval;
  if (ev !== undefined) {
    const sec = el('details', { open: '', id: 'eval' });
    sec.append(el('summary', {}, 'Latest evaluation'));
    const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
    sec.append(
      el('p', {}, `Next-line exact match ${pct(ev.exactMatch)} (${ev.gptExactMatch !== undefined ? `GPT alone ${pct(ev.gptExactMatch)}, ` : ''}${ev.countsExactMatch !== undefined ? `without the GPT ${pct(ev.countsExactMatch)}, ` : ''}n-gram baseline ${pct(ev.baselineExactMatch)}), edit similarity ${pct(ev.editSimilarity)}.`),
      el('p', { class: 'muted' }, `${ev.bitsPerByte.toFixed(3)} bits per byte (baseline ${ev.baselineBitsPerByte.toFixed(3)}) on held-out files, ${ev.cuts} cut points${ev.step !== null ? `, model step ${ev.step}` : ''}.`),
    );
    app.append(sec);
  }
  if (snapshot.evalError !== undefined) app.append(el('p', { class: 'muted', id: 'eval-error' }, snapshot.evalError));
  const m = snapshot.model;
  if (m !== undefined) {
    const sec = el('details', {});
    sec.append(el('summary', {}, 'Model'));
    sec.append(el('p', {}, `GPT-2, ${(m.params / 1e6).toFixed(2)}M parameters: ${m.nLayer} layers, ${m.nHead} heads, width ${m.nEmbd}, context ${m.context}, vocabulary ${m.vocabSize}, batch ${m.batch}.`));
    sec.append(el('p', { class: 'muted' }, `Engine: ${m.engine}.`));
    app.append(sec);
  }
  drawChart();
}

function drawChart(): void {
  const canvas = document.getElementById('loss-chart') as HTMLCanvasElement | null;
  if (canvas === null) return;
  drawLossChart(canvas, [
    { label: 'train', points: history.map((p) => ({ x: p.step, y: p.loss })), colorVar: '--vscode-charts-blue', fallback: '#3794ff' },
    { label: 'val', points: evals.map((p) => ({ x: p.step, y: p.valLoss })), colorVar: '--vscode-charts-orange', fallback: '#d18616', dots: true },
  ], prefs.logScale);
  canvas.dataset['points'] = String(history.length);
}

let pendingRender = false;
function scheduleRender(): void {
  if (pendingRender) return;
  pendingRender = true;
  requestAnimationFrame(() => {
    pendingRender = false;
    render();
  });
}

window.addEventListener('message', (ev: MessageEvent<HostMessage>) => {
  const m = ev.data;
  switch (m?.type) {
    case 'snapshot':
      unavailable = null;
      snapshot = m.snapshot;
      history = [...m.snapshot.history];
      evals = [...m.snapshot.evals];
      scheduleRender();
      break;
    case 'status': {
      if (snapshot === null) return;
      const before = snapshot.status.state;
      snapshot = { ...snapshot, status: m.status };
      // Preparation just finished: fetch the corpus and model summary that now exist.
      if (before === 'preparing' && m.status.state !== 'preparing') vscode.postMessage({ type: 'ready' });
      if (m.status.newPoints) history.push(...m.status.newPoints);
      if (m.status.newValPoints) evals.push(...m.status.newValPoints);
      // A new run starts a new chart.
      if (m.status.state === 'preparing') { history = []; evals = []; }
      scheduleRender();
      break;
    }
    case 'unavailable':
      unavailable = m.reason;
      scheduleRender();
      break;
  }
});
window.addEventListener('resize', () => drawChart());
render();
vscode.postMessage({ type: 'ready' });
