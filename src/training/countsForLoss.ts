// The counts' odds of every training token for the mixture loss (ml/countsOdds.ts), computed in
// a worker thread (in-process when the worker bundle is missing) so the language server stays
// responsive. Deterministic in the tokens: a resumed run computes the same odds again.

import { Worker } from 'node:worker_threads';
import { countsOdds } from '../ml/countsOdds';
import { SERVING } from '../ml/config';
import type { TrainEventSink } from '../shared/trainEvents';
import type { CountsInput, CountsMessage } from '../shared/poolProtocol';
import { distPath } from '../runtime/distFiles';

export async function countsForLoss(train: Uint16Array, vocabSize: number, eotId: number, emit: TrainEventSink): Promise<Float32Array> {
  emit({ event: 'phase', phase: 'counts' });
  const input: CountsInput = { tokens: train.slice(), vocabSize, eotId, order: SERVING.ngramOrder };
  const file = distPath('countsWorker.js');
  let result: Extract<CountsMessage, { type: 'done' }>;
  if (file === null) {
    const { odds, stats } = countsOdds(input.tokens, { ...input, onProgress: (fraction) => emit({ event: 'progress', phase: 'counts', fraction }) });
    result = { type: 'done', odds, stats };
  } else {
    result = await new Promise((resolve, reject) => {
      const worker = new Worker(file, { workerData: input, transferList: [input.tokens.buffer as ArrayBuffer] });
      let settled = false;
      worker.on('message', (m: CountsMessage) => {
        if (m.type === 'progress') emit({ event: 'progress', phase: 'counts', fraction: m.fraction });
        else if (m.type === 'done') { settled = true; resolve(m); }
        else { settled = true; reject(new Error(`scoring the training tokens with the count models: ${m.message}`)); }
      });
      worker.on('error', (e) => { settled = true; reject(e); });
      worker.on('exit', (code) => {
        if (!settled) reject(new Error(`the counts worker exited (code ${code}) before finishing`));
      });
    });
  }
  const s = result.stats;
  emit({ event: 'counts', tokens: s.tokens, files: s.files, ngram_nats: s.ngramNats, counts_nats: s.countsNats, seconds: s.seconds });
  return result.odds;
}
