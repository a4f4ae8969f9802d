// Renders TrainEvents for a person: a live, redrawn status line per phase on a terminal; plain
// lines (at most one per second during training) when stderr is a pipe or a file. Writes are
// synchronous on terminals and files in Node, so nothing sits in a buffer.

import type { TrainEvent } from '../shared/trainEvents';

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '--:--';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

export function formatBytes(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}

function bar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}

export class ProgressRenderer {
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private lineOpen = false;
  private lastDraw = 0;
  private lastValLoss: number | null = null;

  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.out = out;
    this.tty = out.isTTY === true;
  }

  private draw(text: string, force: boolean): void {
    const now = Date.now();
    if (this.tty) {
      if (!force && now - this.lastDraw < 100) return; // ≤ 10 redraws per second
      const width = Math.max(20, (this.out.columns ?? 100) - 1);
      this.out.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`);
      this.lineOpen = true;
    } else {
      if (!force && now - this.lastDraw < 1000) return;
      this.out.write(text + '\n');
    }
    this.lastDraw = now;
  }

  /** Ends the live line so the next message starts on a fresh one. */
  private endLine(): void {
    if (this.tty && this.lineOpen) this.out.write('\n');
    this.lineOpen = false;
  }

  private say(text: string): void {
    this.endLine();
    this.out.write(text + '\n');
  }

  handle(e: TrainEvent): void {
    switch (e.event) {
      case 'phase':
        if (e.phase !== 'done') this.draw(`${e.phase}…`, true);
        break;
      case 'progress':
        this.draw(`${e.phase.padEnd(9)} ${bar(e.fraction, 30)} ${e.detail ?? `${Math.round(e.fraction * 100)}%`}`, false);
        break;
      case 'corpus': {
        const count = (n: number, unit: string): string => (n === 0 ? '' : `${n} ${unit}${n === 1 ? '' : 's'}`);
        const skipped = Object.entries(e.skipped).map(([k, v]) => `${k} ${[count(v.files, 'file'), count(v.dirs, 'dir')].filter(Boolean).join(' + ')}`).join(', ');
        this.say(`corpus    ${e.files} files, ${formatBytes(e.bytes)} (${e.train_files} train / ${e.val_files} held out)${skipped ? `; skipped: ${skipped}` : ''}`);
        const secrets = Object.entries(e.secrets).map(([k, n]) => `${k} ${n}`).join(', ');
        if (secrets) this.say(`secrets   redacted ${Object.values(e.secrets).reduce((a, b) => a + b, 0)}: ${secrets}`);
        break;
      }
      case 'tokenizer':
        this.say(`tokenizer ${e.vocab_size} tokens${e.reused ? ' (reused)' : ` in ${e.seconds.toFixed(1)} s`}`);
        break;
      case 'dataset':
        this.say(`dataset   ${e.train_tokens.toLocaleString('en-US')} train / ${e.val_tokens.toLocaleString('en-US')} val tokens${e.bytes_per_token > 0 ? ` (${e.bytes_per_token.toFixed(2)} bytes/token)` : ''}`);
        break;
      case 'counts':
        this.say(`counts    n-gram ${e.ngram_nats.toFixed(3)} / with copy ${e.counts_nats.toFixed(3)} nats per training token, each file scored as unseen (${e.seconds.toFixed(1)} s): the GPT trains for what they miss`);
        break;
      case 'model':
        this.say(`model     ${(e.params / 1e6).toFixed(2)}M params: ${e.n_layer} layers, ${e.n_head} heads, d ${e.n_embd}, context ${e.context}, batch ${e.batch}; ${e.total_steps} steps${e.resumed_from_step > 0 ? `, resuming at step ${e.resumed_from_step}` : ''} (${e.engine})`);
        break;
      case 'step': {
        const frac = e.step / e.total_steps;
        const val = this.lastValLoss === null ? '' : ` · val ${this.lastValLoss.toFixed(3)}`;
        const text = `training  ${bar(frac, 24)} ${e.step}/${e.total_steps} · loss ${e.loss.toFixed(3)}${val} · ${Math.round(e.tokens_per_s).toLocaleString('en-US')} tok/s · ${formatDuration(e.elapsed_s)} · ETA ${formatDuration(e.eta_s)}`;
        this.draw(text, e.step === e.total_steps);
        break;
      }
      case 'eval':
        this.lastValLoss = e.val_loss;
        break;
      case 'checkpoint':
        if (!this.tty) this.say(`checkpoint step ${e.step}: ${e.dir}`);
        break;
      case 'paused':
        this.say(`paused    at step ${e.step}`);
        break;
      case 'resumed':
        this.say(`resumed   at step ${e.step}`);
        break;
      case 'warning':
        this.say(`warning: ${e.message}`);
        break;
      case 'done':
        this.say(
          `${e.stopped ? 'stopped' : 'done'}      ${e.steps} steps · train loss ${e.train_loss?.toFixed(3) ?? '-'} · val loss ${e.val_loss?.toFixed(3) ?? '-'} · ` +
            `${Math.round(e.tokens_per_s).toLocaleString('en-US')} tok/s · ${formatDuration(e.elapsed_s)}\nmodel     ${e.out_dir}`,
        );
        break;
    }
  }
}
