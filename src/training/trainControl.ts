// Pause, resume and stop for a training run, from outside the training loop (CLI signals, the
// language server's requests). The loop checks it between steps: a paused run keeps its worker
// threads (asleep) and its place, and its paused time is not counted as training time.

export class TrainControl {
  private readonly abort = new AbortController();
  private pausedFlag = false;
  private wake: (() => void) | null = null;

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  pause(): void {
    this.pausedFlag = true;
  }

  resume(): void {
    this.pausedFlag = false;
    this.wake?.();
  }

  /** Ends the run after the current step (with a checkpoint); also ends a pause. */
  stop(): void {
    this.abort.abort();
    this.wake?.();
  }

  /** Resolves at once when not paused; otherwise when resumed or stopped. */
  async waitWhilePaused(): Promise<void> {
    while (this.pausedFlag && !this.abort.signal.aborted) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = null;
    }
  }
}
