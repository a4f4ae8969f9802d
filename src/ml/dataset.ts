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
 * Fill-in-the-middle (Bavarian et al. 2022, "Efficient Training of Language Models to Fill in the
 * Middle"): a fraction of training windows is rearranged so the model learns to write the middle
 * of a text given what comes before AND after it — what an editor needs when the cursor has code
 * below it. Applied per window ("context-level" FIM in the paper), in one of the paper's orders:
 *   PSM  <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle <|endoftext|>
 *   SPM  <|fim_prefix|> <|fim_suffix|> suffix <|fim_middle|> prefix middle <|endoftext|>
 * SPM (the paper's §3 variant, sentinels first so prefix and middle stay contiguous) is what we
 * train and serve by default: the middle simply continues the prefix, so a small model trained for
 * minutes does not have to learn PSM's jump from the end of the suffix back to the end of the
 * prefix — in our runs PSM-trained models started the middle at the wrong place and FIM prompts
 * scored far below prefix-only ones, SPM ones above (docs/experiments.md). It also keeps the
 * editor's KV cache: while the user types, only the end of the prompt changes.
 * One file of the window (see fileSpan) is cut at two uniformly random token positions into
 * prefix, middle and suffix; the four special tokens keep the window at exactly T+1 tokens. The
 * eot after the middle teaches the model to stop where the middle meets the suffix.
 */
export type FimFormat = 'spm' | 'psm';

export interface FimOptions {
  /** Fraction of windows rearranged (0 = plain left-to-right training). */
  fimRate: number;
  /** Token order of a FIM window (default 'spm'). */
  fimFormat?: FimFormat;
  /** Where the special ids come from (the run's tokenizer). */
  tokenizer: { readonly eotId: number; specialId(token: string): number };
}

export interface FimIds { prefix: number; suffix: number; middle: number; eot: number }

/**
 * Rearranges one window in place. doc = source[0..L), L = T − 3; the file being cut occupies
 * doc[lo..hi) (hi: its eot, or L) and the cut points satisfy lo ≤ i ≤ j ≤ hi. Only that file is
 * rearranged — prefix from its start (with the eot before it, as the editor's prompt has at the
 * start of a file), suffix up to its end, as in the editor — and the text of the neighbouring
 * files stays around it in order, so the window keeps its T + 1 tokens:
 *   PSM: doc[0..s) [FP] doc[s..i) [FS] doc[j..hi) [FM] doc[i..j) [EOT] doc[hi..L)
 *   SPM: doc[0..s) [FP] [FS] doc[j..hi) [FM] doc[s..i) doc[i..j) [EOT] doc[hi..L)
 * with s = lo − 1 when an eot precedes the file, else lo. ids[0..T) and targets[0..T) get the
 * sequence shifted by one. Targets that would be [FP], [FS] or [FM] are −1 (no loss): where the
 * rearranged part starts and where the prefix or the suffix ends are random cuts, not something
 * the text predicts.
 * origins, when given, receives for each target k the index in `source` it was taken from, or −1
 * where the target is not predicted as in the left-to-right text the count models follow: the
 * sentinels, the eot after the middle, and the suffix (which comes before its own prefix here).
 */
export function fimWindow(
  source: ArrayLike<number>, T: number, i: number, j: number, fim: FimIds, ids: Int32Array, targets: Int32Array,
  at = 0, format: FimFormat = 'spm', file: [number, number] = [0, T - 3], origins?: Int32Array,
): void {
  const L = T - 3;
  const [lo, hi] = file;
  if (!(0 <= lo && lo <= i && i <= j && j <= hi && hi <= L)) throw new Error(`fimWindow: cut points ${i}, ${j} outside the file at [${lo}, ${hi}] of [0, ${L}]`);
  const s = lo > 0 && source[lo - 1] === fim.eot ? lo - 1 : lo;
  let k = 0;
  // seq(k) is written as input k and as target k−1.
  const put = (tok: number, learn: boolean, origin = -1): void => {
    if (k < T) ids[at + k] = tok;
    if (k > 0) {
      targets[at + k - 1] = learn ? tok : -1;
      if (origins !== undefined) origins[at + k - 1] = origin;
    }
    k++;
  };
  const span = (from: number, to: number, inOrder = true): void => {
    for (let t = from; t < to; t++) put(source[t]!, true, inOrder ? t : -1);
  };
  span(0, s);
  put(fim.prefix, false);
  if (format === 'psm') {
    span(s, i);
    put(fim.suffix, false);
    span(j, hi, false);
    put(fim.middle, false);
    span(i, j); // the count models follow the prefix, so the middle is predicted as left to right
  } else {
    put(fim.suffix, false);
    span(j, hi, false);
    put(fim.middle, false);
    span(s, j); // prefix, then middle: one contiguous run
  }
  put(fim.eot, true);
  span(hi, L);
}

/**
 * The file of a window that FIM rearranges: a window often spans several files (joined by eot);
 * one of them is picked with probability proportional to its length in the window. Cutting one
 * file means the middle is followed by its own file's continuation and the suffix ends with that
 * file, as in the editor (where the suffix is the rest of the file being edited) — not by
 * another file, which in our runs kept a tiny model from learning to use the suffix at all.
 * Returns [lo, hi): the file's tokens in the window (hi: the position of its eot, or L).
 */
function fileSpan(source: ArrayLike<number>, eot: number, rng: Rng): [number, number] {
  const L = source.length;
  const pick = rng.int(L);
  let lo = pick;
  while (lo > 0 && source[lo - 1] !== eot) lo--;
  let hi = pick;
  while (hi < L && source[hi] !== eot) hi++;
  return [lo, hi];
}

/**
 * Training batches of B windows of T+1 tokens (inputs and next-token targets).
 * Each epoch cuts the stream into non-overlapping windows starting at a seeded offset in [0, T)
 * (so window boundaries move between epochs) and visits them in a seeded random order. The
 * permutation is a pure function of (seed, epoch), so the cursor alone restores the position.
 * With FIM, whether a window is rearranged and where it is cut are a pure function of
 * (seed, epoch, index) too, so a resumed run sees exactly the batches an uninterrupted one would.
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
  private readonly fimRate: number;
  private readonly fimFormat: FimFormat;
  private readonly fim: FimIds | null;
  /** The counts' odds per token of `tokens` (ml/countsOdds.ts), for the mixture loss; null: plain loss. */
  private readonly odds: Float32Array | null;
  /** Scratch: where each target of a FIM window came from. */
  private readonly origins: Int32Array;

  /** odds, when given, is aligned with tokens: next() then fills each target's odds too. */
  constructor(tokens: Uint16Array, B: number, T: number, seed: number, fim?: FimOptions, odds?: Float32Array) {
    if (tokens.length < T + 1) {
      throw new Error(`the training set has ${tokens.length} tokens, fewer than one window of ${T + 1}: add files or use a preset with a shorter context`);
    }
    if (odds !== undefined && odds.length !== tokens.length) throw new Error(`BatchLoader: ${odds.length} odds for ${tokens.length} tokens`);
    this.tokens = tokens;
    this.odds = odds ?? null;
    this.origins = new Int32Array(B * T);
    this.B = B;
    this.T = T;
    this.seed = seed;
    this.fimRate = fim !== undefined && T > 4 ? Math.max(0, Math.min(1, fim.fimRate)) : 0;
    this.fimFormat = fim?.fimFormat ?? 'spm';
    this.fim = fim !== undefined && this.fimRate > 0
      ? { prefix: fim.tokenizer.specialId('<|fim_prefix|>'), suffix: fim.tokenizer.specialId('<|fim_suffix|>'), middle: fim.tokenizer.specialId('<|fim_middle|>'), eot: fim.tokenizer.eotId }
      : null;
    this.startEpoch(0);
  }

  /** Whether next() fills each target's counts' odds (the mixture loss). */
  get hasOdds(): boolean {
    return this.odds !== null;
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

  /**
   * Fills ids[B*T] and targets[B*T] with the next batch, and odds[B*T] with each target's counts'
   * odds when the loader has them (0 where a target has none: FIM's sentinels and suffix).
   */
  next(ids: Int32Array, targets: Int32Array, odds?: Float32Array): void {
    const { B, T, tokens } = this;
    const src = odds !== undefined ? this.odds : null;
    if (odds !== undefined && src === null) odds.fill(0, 0, B * T);
    for (let b = 0; b < B; b++) {
      if (this.index >= this.order.length) this.startEpoch(this.epoch + 1);
      const index = this.index++;
      const start = this.offset + this.order[index]! * T;
      if (this.fim !== null) {
        // Its own small RNG per window: the choice does not depend on what came before.
        const rng = new Rng((Math.imul(this.seed + 0x3c6ef372, 0x9e3779b1) ^ Math.imul(this.epoch + 1, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0);
        if (rng.next() < this.fimRate) {
          const L = T - 3;
          const source = tokens.subarray(start, start + L);
          const file = fileSpan(source, this.fim.eot, rng);
          const [lo, hi] = file;
          const a = lo + rng.int(hi - lo + 1), c = lo + rng.int(hi - lo + 1);
          fimWindow(source, T, Math.min(a, c), Math.max(a, c), this.fim, ids, targets, b * T, this.fimFormat, file, this.origins);
          if (src !== null) {
            for (let t = 0; t < T; t++) {
              const o = this.origins[b * T + t]!;
              odds![b * T + t] = o >= 0 ? src[start + o]! : 0;
            }
          }
          continue;
        }
      }
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = tokens[start + t]!;
        targets[b * T + t] = tokens[start + t + 1]!;
      }
      if (src !== null) for (let t = 0; t < T; t++) odds![b * T + t] = src[start + t + 1]!;
    }
  }
}

/**
 * A fixed, deterministic set of validation windows (evenly spaced, non-overlapping), so every
 * evaluation of a run measures the same text and val losses are comparable across steps.
 */
/**
 * train.bin/val.bin bytes (uint16 little-endian token ids) as a Uint16Array over a copy, aligned
 * whatever the offset of the buffer they came in; a trailing odd byte is ignored.
 */
export function tokensFromBytes(bytes: Uint8Array): Uint16Array {
  const copy = Uint8Array.prototype.slice.call(bytes);
  return new Uint16Array(copy.buffer, 0, Math.floor(copy.byteLength / 2));
}

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
