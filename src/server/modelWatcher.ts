// Keeps the served model current: finds the newest good checkpoint of a run (or a fixed checkpoint
// directory), loads it in the background and swaps it in; reports every change of state. Polls
// (cheap: one readdir per interval) rather than fs.watch, whose events differ between platforms
// and are lost on network file systems.

import * as path from 'node:path';
import type { ModelStatusParams } from '../shared/protocol';
import { listCheckpoints } from '../run/checkpoint';
import { CONFIG_FILE, STATE_FILE } from '../run/layout';
import { lstatIfExists } from '../run/safeRead';
import { loadServingModel, ServingModel } from '../completion/servingModel';

export class ModelWatcher {
  private current: ServingModel | null = null;
  /** Identity of what is loaded (checkpoint dir + its trainer_state mtime), to detect changes. */
  private loadedKey = '';
  private failedKey = '';
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private lastReported = '';
  private last: ModelStatusParams | null = null;
  private readonly onStatus: (s: ModelStatusParams) => void;

  constructor(
    private readonly dir: string,
    onStatus: (s: ModelStatusParams) => void,
    private readonly intervalMs = 2000,
  ) {
    // Report changes only: the poll runs every few seconds, the client should hear of news.
    this.onStatus = (st) => {
      const key = `${st.state}|${st.message}`;
      if (key === this.lastReported) return;
      this.lastReported = key;
      this.last = st;
      onStatus(st);
    };
  }

  /** The last status reported (for a client that connects or asks after the fact). */
  get status(): ModelStatusParams | null {
    return this.last;
  }

  get model(): ServingModel | null {
    return this.current;
  }

  /** First check now (resolves when it is done), then every intervalMs. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** The folder it serves from. */
  get folder(): string {
    return this.dir;
  }

  /** Stops serving the loaded model now (its folder is being deleted, or is gone). */
  unload(why: string): void {
    this.current = null;
    this.loadedKey = '';
    this.failedKey = '';
    this.onStatus({ state: 'no-model', message: why });
  }

  /** The directory to load: the newest checkpoint of a run, or `dir` itself if it is a checkpoint. */
  private async candidate(): Promise<{ dir: string; key: string } | null> {
    const ckpts = await listCheckpoints(this.dir);
    const target = ckpts[0] ?? this.dir;
    // lstat: never follows a link, never opens (a FIFO named config.json cannot block the poll);
    // what the files are is the loader's to check (run/safeRead.ts), once per change.
    const st = await lstatIfExists(path.join(target, CONFIG_FILE));
    if (st === null) return null;
    const state = await lstatIfExists(path.join(target, STATE_FILE));
    return { dir: ckpts.length > 0 ? this.dir : target, key: `${target}|${state?.mtimeMs ?? st.mtimeMs}|${state?.ino ?? st.ino}` };
  }

  async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const c = await this.candidate();
      if (c === null) {
        // Its files are gone (deleted by hand): the model in memory is not served any longer.
        if (this.current !== null) this.unload(`the model in ${this.dir} was deleted`);
        else this.onStatus({ state: 'no-model', message: `no trained model yet in ${this.dir}: train one (workspace-lm train, or "Train on Workspace")` });
        return;
      }
      if (c.key === this.loadedKey || c.key === this.failedKey) return;
      this.onStatus({ state: 'loading', message: `loading ${c.key.split('|')[0]}` });
      try {
        const loaded = await loadServingModel(c.dir);
        this.current = loaded;
        this.loadedKey = c.key;
        this.onStatus({
          state: 'ready',
          message: `serving ${loaded.dir}${loaded.counts !== undefined ? ' mixed with its n-gram and copy models' : ` (GPT only: ${loaded.countsSkipped ?? 'no n-gram model'})`}`
            + `${loaded.rejected.length > 0 ? ` (skipped ${loaded.rejected.length} damaged newer checkpoint(s))` : ''}`,
          model: { dir: loaded.dir, step: loaded.step, valLoss: loaded.valLoss, params: loaded.model.numParams },
        });
      } catch (e) {
        // Keep serving the previous model; do not retry the same broken files every interval.
        this.failedKey = c.key;
        this.onStatus({ state: this.current === null ? 'error' : 'ready', message: `could not load ${c.dir}: ${(e as Error).message}` });
      }
    } finally {
      this.busy = false;
    }
  }
}
