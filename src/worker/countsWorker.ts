// A short-lived worker thread that scores every training token with the count models
// (ml/countsOdds.ts) for the mixture loss: seconds of CPU that must not block the language
// server's event loop. The odds are transferred back, not copied.
import { parentPort, workerData } from 'node:worker_threads';
import { countsOdds } from '../ml/countsOdds';
import type { CountsInput, CountsMessage } from '../shared/poolProtocol';
import { lowerThreadPriority } from '../runtime/priority';

lowerThreadPriority();

const post = (m: CountsMessage, transfer: ArrayBuffer[] = []): void => parentPort!.postMessage(m, transfer);
const input = workerData as CountsInput;
try {
  const { odds, stats } = countsOdds(input.tokens, { ...input, onProgress: (fraction) => post({ type: 'progress', fraction }) });
  post({ type: 'done', odds, stats }, [odds.buffer as ArrayBuffer]);
} catch (e) {
  post({ type: 'error', message: (e as Error).message });
}
