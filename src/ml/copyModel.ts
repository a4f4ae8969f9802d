// The copy model: "what followed the longest earlier occurrence of the text before the cursor".
// Code repeats itself — whole lines recur across a project's files and within a file (calls with
// the same arguments, error paths, test cases) — and exact repeats are what a next-line
// completion most often has to produce. A small GPT trained for minutes copies from its window
// only roughly and the 4-gram model sees three tokens back, so neither finishes a long repeat
// reliably. This model does, like an unbounded-order n-gram (Liu et al. 2024, "Infini-gram") or
// a retrieval/kNN language model (Khandelwal et al. 2020), restricted to exact matches:
//
//   Let L be the longest suffix of the history (≥ MIN_MATCH tokens) that occurred earlier — in the
//   training tokens or earlier in the current file. p_copy(w) = the share of those occurrences
//   followed by w. No match of MIN_MATCH tokens: no prediction (length 0).
//
// It is mixed into the served model with a weight per match-length bucket (mixture.ts); long
// matches earn a large weight, short ones little. Storage: every training position is chained by
// a hash of the MIN_MATCH tokens before it (an Int32Array of links and a table of chain heads: 8
// bytes per token plus the table); the current file's positions are chained the same way as
// tokens arrive. Candidates are verified and extended backwards token by token, so a hash
// collision never produces a wrong match.

/**
 * Tokens a match must cover before it predicts (shorter contexts are the n-gram model's job).
 * 4 vs 6 vs 8 on the two codebases of docs/experiments.md: 4 gave the lowest bits per byte on
 * both and the best exact match on average.
 */
export const MIN_MATCH = 4;
/** Backward extension stops here: longer matches are all "very long". */
export const MAX_MATCH = 96;
/** Occurrences examined per query at most (the most recent first within each source). */
const MAX_CANDIDATES = 256;

function hashWindow(tokens: ArrayLike<number>, end: number): number {
  // FNV-1a-style over MIN_MATCH uint16 tokens ending before `end`.
  let h = 0x811c9dc5;
  for (let i = end - MIN_MATCH; i < end; i++) {
    h ^= tokens[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Chains of positions by the hash of the MIN_MATCH tokens before each: head[h] → pos → link[pos] → … (−1 ends). */
class PositionChains {
  head: Int32Array;
  link: Int32Array;
  readonly mask: number;

  constructor(capacity: number, tableBits: number) {
    this.head = new Int32Array(1 << tableBits).fill(-1);
    this.link = new Int32Array(Math.max(16, capacity));
    this.mask = (1 << tableBits) - 1;
  }

  add(tokens: ArrayLike<number>, pos: number): void {
    if (pos >= this.link.length) {
      const grown = new Int32Array(this.link.length * 2);
      grown.set(this.link);
      this.link = grown;
    }
    const h = hashWindow(tokens, pos) & this.mask;
    this.link[pos] = this.head[h]!;
    this.head[h] = pos;
  }

  /** Removes `pos`, which must be the most recently added position. */
  removeLast(tokens: ArrayLike<number>, pos: number): void {
    const h = hashWindow(tokens, pos) & this.mask;
    this.head[h] = this.link[pos]!;
  }
}

function tableBitsFor(n: number): number {
  let bits = 10;
  while (bits < 24 && 1 << bits < 2 * n) bits++;
  return bits;
}

/** The training tokens, indexed once per run (immutable; shared by every session). */
export class CopyCorpus {
  private readonly chains: PositionChains;
  /** Training file path → its tokens' span [start, end) (its eot included), when the paths are known. */
  private spans = new Map<string, [number, number]>();
  private byBasename = new Map<string, string[]>();

  /** `tokens`: files joined by eot, as in train.bin. */
  constructor(readonly tokens: Uint16Array, readonly eotId: number) {
    this.chains = new PositionChains(tokens.length + 1, tableBitsFor(tokens.length));
    // Position p predicts tokens[p] from tokens[p−MIN_MATCH..p); windows across an eot are skipped.
    let sinceEot = 0;
    for (let p = 0; p < tokens.length; p++) {
      if (sinceEot >= MIN_MATCH) this.chains.add(tokens, p);
      sinceEot = tokens[p] === eotId ? 0 : sinceEot + 1;
    }
  }

  /**
   * Names the files of the stream, in order (data/meta.json's train_paths), so a session can leave
   * out the training copy of the document it completes: that copy holds the text below the cursor
   * as it was at training time, and "copying" it would suggest what the file already contains.
   * Ignored when the count does not match the stream's files.
   */
  setFilePaths(paths: readonly string[]): void {
    const spans = new Map<string, [number, number]>();
    let start = 0, file = 0;
    for (let i = 0; i < this.tokens.length; i++) {
      if (this.tokens[i] !== this.eotId) continue;
      if (file < paths.length) spans.set(paths[file]!, [start, i + 1]);
      file++;
      start = i + 1;
    }
    if (file !== paths.length) return;
    this.spans = spans;
    this.byBasename = new Map();
    for (const p of paths) {
      const base = p.slice(p.lastIndexOf('/') + 1);
      const list = this.byBasename.get(base) ?? [];
      list.push(p);
      this.byBasename.set(base, list);
    }
  }

  /**
   * The span of the training file that is `documentPath` (a path relative to the trained folder,
   * or an absolute path ending with one), or null.
   */
  spanOf(documentPath: string): [number, number] | null {
    const norm = documentPath.replace(/\\/g, '/');
    const exact = this.spans.get(norm);
    if (exact !== undefined) return exact;
    for (const p of this.byBasename.get(norm.slice(norm.lastIndexOf('/') + 1)) ?? []) {
      if (norm.endsWith('/' + p)) return this.spans.get(p)!;
    }
    return null;
  }

  /** First position of the chain for a history's last MIN_MATCH tokens. */
  chainStart(history: ArrayLike<number>, len: number): number {
    return this.chains.head[hashWindow(history, len) & this.chains.mask]!;
  }

  next(pos: number): number {
    return this.chains.link[pos]!;
  }
}

export interface CopyPrediction {
  /** Tokens matched (0: no match of MIN_MATCH tokens, no prediction). */
  length: number;
  /** Next tokens after the longest matches, and how often each. */
  ids: number[];
  counts: number[];
  total: number;
}

/**
 * The copy model over one document: the history is the file so far (as NgramSession's), chained
 * as it grows so earlier parts of the file are found too.
 */
export class CopySession {
  private history: number[] = [];
  private chains = new PositionChains(4096, 14);
  /** sinceEot[i]: tokens of the current file up to and including history[i] (0 at an eot). */
  private sinceEot: number[] = [];

  /** Training positions [start, end) not to copy from: the document's own training copy. */
  private excluded: [number, number] | null = null;

  constructor(readonly corpus: CopyCorpus | null, readonly eotId: number) {}

  /** The document being completed (its path or file system path), or null: see CopyCorpus.setFilePaths. */
  setDocument(documentPath: string | null): void {
    this.excluded = documentPath === null || this.corpus === null ? null : this.corpus.spanOf(documentPath);
  }

  /** Leaves out training positions [start, end) (a file's own span, for the training loss's leave-one-file-out scores). */
  excludeSpan(span: [number, number] | null): void {
    this.excluded = span;
  }

  get length(): number {
    return this.history.length;
  }

  reset(): void {
    this.history = [];
    this.sinceEot = [];
    this.chains = new PositionChains(4096, 14);
  }

  push(id: number): void {
    const pos = this.history.length;
    // Position pos (followed by id) becomes a candidate when the MIN_MATCH tokens before it lie in one file.
    if (pos >= MIN_MATCH && this.sinceEot[pos - 1]! >= MIN_MATCH) this.chains.add(this.history, pos);
    this.history.push(id);
    this.sinceEot.push(id === this.eotId ? 0 : pos === 0 ? 1 : this.sinceEot[pos - 1]! + 1);
  }

  /** Undoes the last push. */
  pop(): void {
    const pos = this.history.length - 1;
    if (pos < 0) throw new Error('CopySession.pop: nothing to undo');
    this.history.pop();
    this.sinceEot.pop();
    if (pos >= MIN_MATCH && this.sinceEot[pos - 1]! >= MIN_MATCH) this.chains.removeLast(this.history, pos);
  }

  /** The continuation of the longest earlier match of the history's end (see the file comment). */
  predict(): CopyPrediction {
    const h = this.history;
    const n = h.length;
    const none: CopyPrediction = { length: 0, ids: [], counts: [], total: 0 };
    if (n < MIN_MATCH || this.sinceEot[n - 1]! < MIN_MATCH) return none;
    let best = 0;
    const next: number[] = [];
    const consider = (src: ArrayLike<number>, pos: number): void => {
      // src[pos] follows a window that should equal the history's last tokens: verify and extend.
      let len = 0;
      while (len < MAX_MATCH && pos - 1 - len >= 0 && n - 1 - len >= 0 && src[pos - 1 - len] === h[n - 1 - len] && h[n - 1 - len] !== this.eotId) len++;
      if (len < MIN_MATCH) return;
      if (len > best) { best = len; next.length = 0; }
      if (len === best) next.push(src[pos]!);
    };
    // Earlier in this file (most recent first).
    let seen = 0;
    for (let p = this.chains.head[hashWindow(h, n) & this.chains.mask]!; p >= 0 && seen < MAX_CANDIDATES; p = this.chains.link[p]!, seen++) {
      if (p < n) consider(h, p);
    }
    if (this.corpus !== null) {
      const t = this.corpus.tokens;
      seen = 0;
      const ex = this.excluded;
      for (let p = this.corpus.chainStart(h, n); p >= 0 && seen < MAX_CANDIDATES; p = this.corpus.next(p)) {
        if (ex !== null && p >= ex[0] && p < ex[1]) continue;
        consider(t, p);
        seen++;
      }
    }
    if (best === 0) return none;
    const counts = new Map<number, number>();
    for (const id of next) counts.set(id, (counts.get(id) ?? 0) + 1);
    return { length: best, ids: [...counts.keys()], counts: [...counts.values()], total: next.length };
  }
}

/** Match-length buckets for the copy model's weight: none, 4–11, 12–23, 24–47, 48+ tokens. */
export const COPY_LENGTH_EDGES = [MIN_MATCH, 12, 24, 48];

export function copyBucket(length: number): number {
  let b = 0;
  while (b < COPY_LENGTH_EDGES.length && length >= COPY_LENGTH_EDGES[b]!) b++;
  return b;
}

export const COPY_BUCKETS = COPY_LENGTH_EDGES.length + 1;

export function copyBucketNames(): string[] {
  return ['no match', ...COPY_LENGTH_EDGES.map((e, i) => (i + 1 < COPY_LENGTH_EDGES.length ? `match ${e}–${COPY_LENGTH_EDGES[i + 1]! - 1} tokens` : `match ${e}+ tokens`))];
}

/**
 * Mixes the copy prediction into log-probabilities `logp` (in place):
 * p = weight·p_copy + (1 − weight)·exp(logp). No-op without a prediction.
 */
export function mixCopy(logp: Float32Array | Float64Array, pred: CopyPrediction, weight: number): void {
  if (pred.length === 0 || weight <= 0) return;
  const keep = Math.log(1 - weight);
  const old = pred.ids.map((id) => logp[id]!);
  for (let v = 0; v < logp.length; v++) logp[v] = logp[v]! + keep;
  pred.ids.forEach((id, i) => {
    logp[id] = Math.log(weight * (pred.counts[i]! / pred.total) + (1 - weight) * Math.exp(old[i]!));
  });
}

/** p_copy(token) of a prediction (0 when it does not predict the token or predicts nothing). */
export function copyProbability(pred: CopyPrediction, token: number): number {
  const i = pred.ids.indexOf(token);
  return i < 0 ? 0 : pred.counts[i]! / pred.total;
}
