// Training yields to the user: each worker thread lowers its own scheduling priority (called from
// src/worker/*; here because the trainer also needs to know whether it can).
import * as os from 'node:os';
import { TRAINING_THREAD_NICE } from '../ml/config';

/**
 * On Linux the nice value belongs to a thread, and setpriority(…, 0, …) — os.setPriority(n) —
 * changes only the calling thread: this worker, not the server's main thread that answers
 * completions. Elsewhere it would lower the whole process, completions included, so there the
 * threads keep their priority and the default thread count leaves a core free instead
 * (trainer.ts, defaultThreads). Failing (a sandbox that forbids it) only costs responsiveness.
 */
export const PER_THREAD_PRIORITY = process.platform === 'linux';

export function lowerThreadPriority(): void {
  if (!PER_THREAD_PRIORITY) return;
  try {
    if (os.getPriority() < TRAINING_THREAD_NICE) os.setPriority(TRAINING_THREAD_NICE);
  } catch {
    // keep the default priority
  }
}
