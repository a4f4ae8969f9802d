// Training yields to the user: each worker thread lowers its own scheduling priority.
import * as os from 'node:os';
import { TRAINING_THREAD_NICE } from '../ml/config';

/**
 * On Linux the nice value belongs to a thread, and setpriority(…, 0, …) — os.setPriority(n) —
 * changes only the calling thread: this worker, not the server's main thread that answers
 * completions. Elsewhere it lowers the whole server process, still below the editor. Failing
 * (a sandbox that forbids it) only costs responsiveness, never the run.
 */
export function lowerThreadPriority(): void {
  try {
    if (os.getPriority() < TRAINING_THREAD_NICE) os.setPriority(TRAINING_THREAD_NICE);
  } catch {
    // keep the default priority
  }
}
