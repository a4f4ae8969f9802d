// From documents to training batches: the by-file split, encoding into one uint16 token stream
// per split (nanoGPT's train.bin / val.bin layout, files joined by <|endoftext|>), and the batch
// loader whose position is a small cursor that a checkpoint can store.

import { hashString, Rng } from './rng';

export interface Document {
  /** Path relative to the corpus root, with forward slashes (stable across machines). */
  path: string;
  bytes: Uint8Array;
}

export interface Split {
  train: Document[];
  val: Document[];
}

/**
 * Holds out ~valFraction of the files, chosen by a hash of the path so the split is stable when
 * files are added or removed and does not depend on the walk order. At least one file goes to
 * validation when there are two or more (and never all of them).
 */
export function splitByFile(docs: Document[], valFraction: number): Split {
  const sorted = [...docs].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (sorted.length < 2 || valFraction <= 0) return { train: sorted, val: [] };
  const threshold = Math.round(valFraction * 10_000);
  const isVal = (d: Document): boolean => hashString(d.path) % 10_000 < threshold;
  let val = sorted.filter(isVal);
  let train = sorted.filter((d) => !isVal(d));
  if (val.length === 0) {
    // Small repo and no file hashed below the threshold: hold out the one with the smallest hash.
    const pick = sorted.reduce((best, d) => (hashString(d.path) % 10_000 < hashString(best.path) % 10_000 ? d : best));
    val = [pick];
    train = sorted.filter((d) => d !== pick);
  }
  if (train.length === 0) {
    train = [val[val.length - 1]!];
    val = val.slice(0, -1);
  }
  return { train, val };
}

/** Concatenates encoded documents, each followed by eotId, as uint16 ids. */
export function encodeDocuments(
  docs: Document[],
  encode: (bytes: Uint8Array) => ArrayLike<number>,
  eotId: number,
  onProgress?: (fraction: number) => void,
): Uint16Array {
  if (eotId > 65_535) throw new Error('encodeDocuments: ids must fit in uint16');
  const parts: ArrayLike<number>[] = [];
  let total = 0;
  const totalBytes = docs.reduce((s, d) => s + d.bytes.length, 0) || 1;
  let doneBytes = 0;
  for (const d of docs) {
    const ids = encode(d.bytes);
    parts.push(ids);
    total += ids.length + 1;
    doneBytes += d.bytes.length;
    onProgress?.(doneBytes / totalBytes);
  }
  const out = new Uint16Array(total);
  let pos = 0;
  for (const ids of parts) {
    for (let i = 0; i < ids.length; i++) out[pos++] = ids[i]!;
    out[pos++] = eotId;
  }
  return out;
}

/** Where the training loader stands: enough to continue exactly where a run stopped. */
export interface LoaderCursor {
  epoch: number;
  /** Index of the next window within this epoch's permutation. */
  index: number;
}

/**
 * Training batches of B windows of T+1 tokens (inputs and next-token targets).
 * Each epoch cuts the stream into non-overlapping windows starting at a seeded offset in [0, T)
 * (so window boundaries move between epochs) and visits them in a seeded random order. The
 * permutation is a pure function of (seed, epoch), so the cursor alone restores the position.
 */
export class BatchLoader {
  readonly B: number;
  readonly T: number;
  private readonly tokens: Uint16Array;
  private readonly seed: number;
  private epoch = 0;
  private index = 0;
  private offset = 0;
  private order: Uint32Array = new Uint32Array(0);

  constructor(tokens: Uint16Array, B: number, T: number, seed: number) {
    if (tokens.length < T + 1) {
      throw new Error(`the training set has ${tokens.length} tokens, fewer than one window of ${T + 1}: add files or use a preset with a shorter context`);
    }
    this.tokens = tokens;
    this.B = B;
    this.T = T;
    this.seed = seed;
    this.startEpoch(0);
  }

  /** Windows per epoch (the last partial window is dropped). */
  get windowsPerEpoch(): number {
    return this.order.length;
  }

  /** Optimizer steps per epoch. */
  get stepsPerEpoch(): number {
    return Math.max(1, Math.ceil(this.order.length / this.B));
  }

  cursor(): LoaderCursor {
    return { epoch: this.epoch, index: this.index };
  }

  restore(c: LoaderCursor): void {
    this.startEpoch(c.epoch);
    this.index = Math.min(c.index, this.order.length);
  }

  /** Fractional epochs done. */
  get epochProgress(): number {
    return this.epoch + this.index / Math.max(1, this.order.length);
  }

  private startEpoch(epoch: number): void {
    const T = this.T;
    const rng = new Rng((this.seed * 1_000_003 + epoch * 7919) >>> 0);
    // Epoch 0 starts at 0; later epochs shift the grid so the model sees other boundaries.
    this.offset = epoch === 0 ? 0 : rng.int(Math.min(T, this.tokens.length - T));
    const n = Math.max(1, Math.floor((this.tokens.length - 1 - this.offset) / T));
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    rng.shuffle(order);
    this.order = order;
    this.epoch = epoch;
    this.index = 0;
  }

  /** Fills ids[B*T] and targets[B*T] with the next batch. */
  next(ids: Int32Array, targets: Int32Array): void {
    const { B, T, tokens } = this;
    for (let b = 0; b < B; b++) {
      if (this.index >= this.order.length) this.startEpoch(this.epoch + 1);
      const start = this.offset + this.order[this.index++]! * T;
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = tokens[start + t]!;
        targets[b * T + t] = tokens[start + t + 1]!;
      }
    }
  }
}

/**
 * A fixed, deterministic set of validation windows (evenly spaced, non-overlapping), so every
 * evaluation of a run measures the same text and val losses are comparable across steps.
 */
export function validationBatches(tokens: Uint16Array, B: number, T: number, maxBatches: number): { ids: Int32Array; targets: Int32Array }[] {
  const windows = Math.floor((tokens.length - 1) / T);
  if (windows < 1) return [];
  const want = Math.min(windows, maxBatches * B);
  const nBatches = Math.max(1, Math.floor(want / B));
  const out: { ids: Int32Array; targets: Int32Array }[] = [];
  const stride = windows / (nBatches * B);
  for (let k = 0; k < nBatches; k++) {
    const ids = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-1);
    for (let b = 0; b < B; b++) {
      const w = Math.floor((k * B + b) * stride);
      if (w >= windows) continue; // fewer windows than B: the rest of the batch has no targets
      const start = w * T;
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = tokens[start + t]!;
        targets[b * T + t] = tokens[start + t + 1]!;
      }
    }
    out.push({ ids, targets });
  }
  return out;
}
