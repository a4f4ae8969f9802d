// A small canvas line chart for training and validation loss against steps. Colours come from the
// VS Code theme (CSS variables), so light, dark and high-contrast themes all read well.

export interface Series {
  label: string;
  points: { x: number; y: number }[];
  /** CSS variable with the colour, e.g. --vscode-charts-blue. */
  colorVar: string;
  fallback: string;
  dots?: boolean;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v.length > 0 ? v : fallback;
}

/** "Nice" tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function drawLossChart(canvas: HTMLCanvasElement, series: Series[], logScale: boolean): void {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.max(1, Math.round(width * dpr));
  canvas.height = Math.max(1, Math.round(height * dpr));
  const g = canvas.getContext('2d');
  if (g === null) return;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, width, height);
  const fg = cssVar('--vscode-foreground', '#ccc');
  const grid = cssVar('--vscode-editorWidget-border', 'rgba(128,128,128,0.3)');
  const font = cssVar('--vscode-font-family', 'sans-serif');
  g.font = `10px ${font}`;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y) && p.y > 0);
  if (all.length === 0) {
    g.fillStyle = fg;
    g.globalAlpha = 0.7;
    g.fillText('The loss appears here once training runs.', 8, height / 2);
    g.globalAlpha = 1;
    return;
  }
  const tf = (y: number): number => (logScale ? Math.log10(y) : y);
  let xMin = Math.min(...all.map((p) => p.x));
  let xMax = Math.max(...all.map((p) => p.x));
  let yMin = Math.min(...all.map((p) => tf(p.y)));
  let yMax = Math.max(...all.map((p) => tf(p.y)));
  if (xMax === xMin) xMax = xMin + 1;
  if (yMax === yMin) { yMax += 0.5; yMin -= 0.5; }
  const pad = { l: 34, r: 8, t: 8, b: 18 };
  const X = (x: number): number => pad.l + ((x - xMin) / (xMax - xMin)) * (width - pad.l - pad.r);
  const Y = (y: number): number => pad.t + (1 - (tf(y) - yMin) / (yMax - yMin)) * (height - pad.t - pad.b);
  // Grid and labels.
  g.strokeStyle = grid;
  g.fillStyle = fg;
  g.lineWidth = 1;
  const yTicks = logScale
    ? ticks(yMin, yMax, 4).map((t) => Math.pow(10, t))
    : ticks(yMin, yMax, 4);
  for (const t of yTicks) {
    const y = Y(t);
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(width - pad.r, y); g.stroke();
    g.fillText(t >= 10 ? t.toFixed(0) : t.toFixed(t >= 1 ? 1 : 2), 2, y + 3);
  }
  for (const t of ticks(xMin, xMax, 4)) g.fillText(String(Math.round(t)), X(t) - 6, height - 4);
  xMin = Math.min(xMin, xMax);
  // Lines.
  for (const s of series) {
    const pts = s.points.filter((p) => Number.isFinite(p.y) && p.y > 0);
    if (pts.length === 0) continue;
    g.strokeStyle = cssVar(s.colorVar, s.fallback);
    g.fillStyle = g.strokeStyle;
    g.lineWidth = 1.5;
    g.beginPath();
    pts.forEach((p, i) => (i === 0 ? g.moveTo(X(p.x), Y(p.y)) : g.lineTo(X(p.x), Y(p.y))));
    g.stroke();
    if (s.dots === true) for (const p of pts) { g.beginPath(); g.arc(X(p.x), Y(p.y), 2.5, 0, 2 * Math.PI); g.fill(); }
  }
}
