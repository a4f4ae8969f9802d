/**
 * N-gram benchmark: trains the Kneser-Ney model (order 4) at the size of a real run's train.bin
 * and times scoring with it. The baseline is the least any trainer does: counting the same
 * n-grams (every order, histories ending at an eot) in a JavaScript Map keyed by number.
 *
 *   node --import tsx scripts/bench-ngram.ts [train.bin] [--tokens N] [--vocab V] [--order K]
 *
 * Without a file: a noisy Markov chain of --tokens (default 1,500,000) ids over --vocab (default
 * 8000), files ended by eot = V − 1 (what test/ngram.test.ts checks the model's size on). With a
 * run's data/train.bin (uint16 ids), its meta.json next to it gives the vocabulary and eot.
 * Last line: training time, and its ratio to the Map count.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KneserNey, NgramSession } from '../src/ml/ngram';
import { Rng } from '../src/ml/rng';

function parseArgs(argv: string[]): { file: string | null; tokens: number; vocab: number; order: number } {
  let file: string | null = null;
  let tokens = 1_500_000;
  let vocab = 8000;
  let order = 4;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--tokens') tokens = Number(argv[++i]);
    else if (argv[i] === '--vocab') vocab = Number(argv[++i]);
    else if (argv[i] === '--order') order = Number(argv[++i]);
    else file = argv[i]!;
  }
  return { file, tokens, vocab, order };
}

/** The same stream as test/ngram.test.ts: structure at several orders, files ended by eot. */
function markovStream(n: number, V: number, seed: number): Uint16Array {
  const rng = new Rng(seed);
  const eot = V - 1;
  const t = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.002) t[i] = eot;
    else if (i >= 2 && r < 0.6) t[i] = (t[i - 1]! * 7 + t[i - 2]! * 3 + 1) % (V - 1);
    else t[i] = Math.floor(rng.next() ** 3 * (V - 1));
  }
  return t;
}

function loadTokens(file: string): { tokens: Uint16Array; vocab: number; eot: number } {
  const raw = fs.readFileSync(file);
  const tokens = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength >> 1);
  const meta = JSON.parse(fs.readFileSync(path.join(path.dirname(file), 'meta.json'), 'utf8')) as { vocab_size?: number; eot_id?: number };
  if (typeof meta.vocab_size !== 'number' || typeof meta.eot_id !== 'number') throw new Error(`${file}: the meta.json next to it has no vocab_size / eot_id`);
  return { tokens, vocab: meta.vocab_size, eot: meta.eot_id };
}

/** Raw counts of every (history, next) pair, all orders, in a Map: the baseline. Returns the pairs. */
function mapCount(tokens: Uint16Array, V: number, order: number, eot: number): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < tokens.length; i++) {
    const w = tokens[i]!;
    counts.set(w, (counts.get(w) ?? 0) + 1);
    let key = 0;
    for (let d = 1; d < order; d++) {
      const x = i - d >= 0 ? tokens[i - d]! : eot;
      key = key * (V + 1) + x + 1;
      const k = key * V + w;
      counts.set(k, (counts.get(k) ?? 0) + 1);
      if (x === eot) break;
    }
  }
  return counts.size;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const { tokens, vocab: V, eot } = args.file === null
    ? { tokens: markovStream(args.tokens, args.vocab, 1), vocab: args.vocab, eot: args.vocab - 1 }
    : loadTokens(args.file);
  const order = args.order;

  // Best of 3 for the timings (the first run also warms the JIT).
  const best = (f: () => void): number => {
    let min = Infinity;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      f();
      min = Math.min(min, performance.now() - t0);
    }
    return min / 1000;
  };
  let kn: KneserNey | null = null;
  const trainSec = best(() => { kn = KneserNey.train(tokens, { order, vocabSize: V, eotId: eot }); });
  const model = kn!;
  let pairs = 0;
  const mapSec = best(() => { pairs = mapCount(tokens, V, order, eot); });

  const scored = Math.min(100_000, tokens.length - 10);
  let nats = 0;
  const scoreSec = best(() => {
    nats = 0;
    for (let i = 10; i < 10 + scored; i++) nats -= model.logProb(tokens, tokens[i]!, i);
  });
  // Whole next-token distributions, as a completion's n-gram session computes them.
  const session = new NgramSession(model);
  const dists = 1000;
  const distSec = best(() => {
    session.reset();
    session.push(eot);
    for (let i = 0; i < dists; i++) {
      session.push(tokens[i]!);
      session.distribution();
    }
  });

  const rows: Array<[string, string]> = [
    ['input', args.file ?? 'Markov stream (seed 1)'],
    ['tokens', tokens.length.toLocaleString('en-US')],
    ['vocab / order', `${V} / ${order}`],
    ['history nodes', model.stats.nodes.toLocaleString('en-US')],
    ['stored n-grams', `${model.stats.ngrams.toLocaleString('en-US')} (Map baseline: ${pairs.toLocaleString('en-US')} pairs)`],
    ['train seconds (best of 3)', trainSec.toFixed(2)],
    ['train Mtokens/s', (tokens.length / trainSec / 1e6).toFixed(2)],
    ['Map count seconds (baseline)', mapSec.toFixed(2)],
    [`logProb µs/token (${scored.toLocaleString('en-US')})`, ((scoreSec / scored) * 1e6).toFixed(2)],
    ['nats/token on those', (nats / scored).toFixed(3)],
    [`distribution() µs/call (${dists}, V = ${V})`, ((distSec / dists) * 1e6).toFixed(1)],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
  console.log(`train ${tokens.length.toLocaleString('en-US')} tokens: ${trainSec.toFixed(2)} s; ratio ours / Map count of the same n-grams: ${(trainSec / mapSec).toFixed(2)}`);
}

main();
