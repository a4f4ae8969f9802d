// A short-lived worker thread that builds the dataset (index, tokenizer, encode) off the main
// thread. Progress events stream back as they happen; the token arrays are transferred, not
// copied; when the thread exits, the memory of tokenizer training goes with it.
import { parentPort, workerData } from 'node:worker_threads';
import { buildDataset, BuildInput } from '../corpus/datasetBuilder';
import type { PrepareMessage } from '../shared/poolProtocol';
import { lowerThreadPriority } from '../runtime/priority';

lowerThreadPriority();

const post = (m: PrepareMessage, transfer: ArrayBuffer[] = []): void => parentPort!.postMessage(m, transfer);

buildDataset(workerData as BuildInput, (event) => post({ type: 'event', event })).then(
  (result) => post({ type: 'done', result }, [result.train.buffer as ArrayBuffer, result.val.buffer as ArrayBuffer]),
  (e: unknown) => post({ type: 'error', message: (e as Error).message }),
);
