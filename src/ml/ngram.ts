// An n-gram language model over token ids: interpolated modified Kneser-Ney (Chen & Goodman 1998,
// "An Empirical Study of Smoothing Techniques for Language Modeling", §3.5/§4.1.6) plus a cache of
// the current file's recent tokens (Kuhn & De Mori 1990; Tu, Su & Devanbu 2014, "On the
// Localness of Software"). It is the baseline the GPT must beat: on a single project such models
// are strong (Hindle et al. 2012; Karampatsis et al. 2020) — and a partner for mixing with it.
//
// Model. For a history h of the last k−1 tokens (k ≤ order):
//   p_k(w | h) = (c_k(h w) − D_k(c_k(h w)))⁺ / c_k(h ·)  +  γ_k(h) · p_{k−1}(w | h′)
//   γ_k(h)     = (D_k1·N1(h ·) + D_k2·N2(h ·) + D_k3+·N3+(h ·)) / c_k(h ·)
// where h′ drops the oldest token of h, Nr(h ·) counts the distinct w with c_k(h w) = r (r ≥ 3
// for N3+), and the recursion ends in the uniform distribution 1/V (so every id, even one never
// seen, has a probability and the distribution sums to exactly 1). c_k is the raw count at the
// highest order and the continuation count N1+(· h w) — in how many distinct contexts the n-gram
// appears — at lower orders (Kneser & Ney 1995). The three discounts of each order come from its
// counts of counts n1..n4: Y = n1/(n1+2n2), D1 = 1−2Y·n2/n1, D2 = 2−3Y·n3/n2, D3+ = 3−4Y·n4/n3.
// A level whose history was never seen is skipped (its γ would be 1).
//
// Files. Training streams are files joined by <|endoftext|> (eot). A history never reaches back
// across an eot: the eot is the start-of-file symbol (like <s>), so the first tokens of a file
// are predicted from "start of file", not from the previous file's last tokens. N-grams whose
// history starts with that eot cannot be extended to the left, so — as KenLM does for <s> — they
// keep their raw counts at every order.
//
// Storage. Histories live in a trie keyed by (parent node, token) read from the most recent token
// backwards, so the histories of all orders for one position are one path from the root and the
// lower-order history of a node is its parent. Counts are kept per history node as a sorted list
// of (token, count): a next-token distribution is one pass over those lists, a single probability
// a binary search per order. Keys are exact integers (node · 65536 + token < 2^53) in an
// open-addressing table over typed arrays: no strings, no per-entry objects, so ~1.5M tokens train
// in seconds with modest memory.


/** Pushes that TokenCache.pop and NgramSession.pop can undo in a row (a beam's tokens). */
export const UNDO_DEPTH = 256;

/** Token ids are uint16 (train.bin): keys are node · KEY_BASE + token. */
const KEY_BASE = 65_536;
const EMPTY = -1;

/** Open-addressing hash table from integer keys in [0, 2^53) to uint32 values; linear probing. */
class IntTable {
  private keys: Float64Array;
  private vals: Uint32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1 << 16) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.keys = new Float64Array(cap).fill(EMPTY);
    this.vals = new Uint32Array(cap);
    this.mask = cap - 1;
  }

  private slot(key: number): number {
    // Mix both 32-bit halves (murmur3-style finalizer) so nearby keys spread out.
    const lo = key >>> 0;
    const hi = (key / 4_294_967_296) >>> 0;
    let h = Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi + 0x7f4a7c15, 0x85ebca77);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    let s = h & this.mask;
    const keys = this.keys;
    while (keys[s] !== EMPTY && keys[s] !== key) s = (s + 1) & this.mask;
    return s;
  }

  get(key: number): number {
    const s = this.slot(key);
    return this.keys[s] === key ? this.vals[s]! : -1;
  }

  /** The value of `key`, inserting `value` first when the key is absent. */
  getOrSet(key: number, value: number): number {
    const s = this.slot(key);
    if (this.keys[s] === key) return this.vals[s]!;
    this.keys[s] = key;
    this.vals[s] = value;
    this.size++;
    if (this.size * 2 > this.keys.length) this.grow();
    return value;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    this.keys = new Float64Array(oldKeys.length * 2).fill(EMPTY);
    this.vals = new Uint32Array(oldKeys.length * 2);
    this.mask = this.keys.length - 1;
    for (let i = 0; i < oldKeys.length; i++) {
      const k = oldKeys[i]!;
      if (k === EMPTY) continue;
      const s = this.slot(k);
      this.keys[s] = k;
      this.vals[s] = oldVals[i]!;
    }
  }
}

/** A growable uint32 array. */
class U32Vec {
  data: Uint32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Uint32Array(capacity);
  }
  push(v: number): number {
    if (this.length === this.data.length) {
      const grown = new Uint32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length] = v;
    return this.length++;
  }
}

/**
 * The buckets of the served mixture's weights (servedModel.ts): an n-gram prediction's matched
 * depth × its confidence. Thresholds on the n-gram's top probability that split each matched depth into confidence
 * levels: below 0.2 (torn between many), 0.2–0.5, 0.5–0.8, and above 0.8 (nearly certain).
 */
export const CONFIDENCE_LEVELS = [0.2, 0.5, 0.8];

/** The bucket of a prediction: matched depth × confidence level. */
export function mixtureBucket(depth: number, topProbability: number): number {
  let level = 0;
  while (level < CONFIDENCE_LEVELS.length && topProbability >= CONFIDENCE_LEVELS[level]!) level++;
  return depth * (CONFIDENCE_LEVELS.length + 1) + level;
}

/** The mixture's bucket count for an n-gram model of this order. */
export function mixtureBuckets(order: number): number {
  return order * (CONFIDENCE_LEVELS.length + 1);
}

/** Names of the buckets, for reports. */
export function bucketNames(order: number): string[] {
  const edges = [0, ...CONFIDENCE_LEVELS, 1];
  return Array.from({ length: mixtureBuckets(order) }, (_, b) => {
    const depth = Math.floor(b / (CONFIDENCE_LEVELS.length + 1)), level = b % (CONFIDENCE_LEVELS.length + 1);
    return `history ${depth}, top p ${edges[level]}–${edges[level + 1]}`;
  });
}

export interface NgramOptions {
  /** n: the longest n-gram (history of n−1 tokens). 2–6; 4 is what the literature on code uses. */
  order?: number;
  /** Ids are 0..vocabSize−1. */
  vocabSize: number;
  /** <|endoftext|>: joins files in the stream, and starts every history. */
  eotId: number;
}

export const DEFAULT_NGRAM_ORDER = 4;

/** Chen & Goodman's estimates from counts of counts n[1..4]; a degenerate estimate falls back to r/2. */
export function modifiedKneserNeyDiscounts(n1: number, n2: number, n3: number, n4: number): [number, number, number] {
  const y = n1 / (n1 + 2 * n2);
  const est = [1 - (2 * y * n2) / n1, 2 - (3 * y * n3) / n2, 3 - (4 * y * n4) / n3];
  // D_r must lie in (0, r]: then c − D(c) ≥ 0 for every count and no mass is lost or invented.
  return est.map((d, i) => (Number.isFinite(d) && d > 0 ? Math.min(d, i + 1) : (i + 1) / 2)) as [number, number, number];
}

/** The trained model: immutable, shareable by any number of sessions. */
export class KneserNey {
  readonly order: number;
  readonly vocabSize: number;
  readonly eotId: number;
  /** discounts[d] = [D1, D2, D3+] for histories of d tokens (n-grams of order d+1). */
  readonly discounts: [number, number, number][];
  /** History trie: (node · KEY_BASE + older token) → child node. Node 0 is the empty history. */
  private readonly children: IntTable;
  private readonly depth: Uint8Array;
  /** Per node: its followers' tokens (sorted) and counts live at [start[node], start[node+1]). */
  private readonly start: Uint32Array;
  private readonly followTok: Uint16Array;
  private readonly followCount: Uint32Array;
  /** Per node: 1 / c(h ·) (0 when the node has no counts at its level) and D1·N1 + D2·N2 + D3·N3+. */
  private readonly invTotal: Float64Array;
  private readonly gammaNum: Float64Array;
  /** Scratch for the history path of one query. */
  private readonly path: Int32Array;
  /** Sizes, for logs and tests. */
  readonly stats: { tokens: number; nodes: number; ngrams: number; seconds: number };

  private constructor(f: {
    order: number; vocabSize: number; eotId: number; discounts: [number, number, number][]; children: IntTable; depth: Uint8Array;
    start: Uint32Array; followTok: Uint16Array; followCount: Uint32Array; invTotal: Float64Array; gammaNum: Float64Array;
    stats: { tokens: number; nodes: number; ngrams: number; seconds: number };
  }) {
    this.order = f.order; this.vocabSize = f.vocabSize; this.eotId = f.eotId; this.discounts = f.discounts;
    this.children = f.children; this.depth = f.depth; this.start = f.start; this.followTok = f.followTok;
    this.followCount = f.followCount; this.invTotal = f.invTotal; this.gammaNum = f.gammaNum; this.stats = f.stats;
    this.path = new Int32Array(f.order);
  }

  /** Counts every n-gram of `tokens` (files joined by eot) and builds the model. */
  static train(tokens: ArrayLike<number>, opts: NgramOptions): KneserNey {
    const t0 = performance.now();
    const order = opts.order ?? DEFAULT_NGRAM_ORDER;
    if (!Number.isInteger(order) || order < 2 || order > 6) throw new Error(`n-gram order must be an integer in 2..6, got ${order}`);
    const V = opts.vocabSize;
    if (!(V > 0 && V <= KEY_BASE)) throw new Error(`n-gram vocabulary must be 1..${KEY_BASE}, got ${V}`);
    const eot = opts.eotId;
    const N = tokens.length;

    // 1. Raw counts of (history node, next token) for every order, and the history trie.
    const children = new IntTable(Math.max(1024, N));
    const nodeParent = new U32Vec(N + 1);
    const nodeTok = new U32Vec(N + 1);
    const nodeDepth = new U32Vec(N + 1);
    nodeParent.push(0); nodeTok.push(KEY_BASE); nodeDepth.push(0); // root: the empty history
    const entries = new IntTable(Math.max(1024, N));
    const entNode = new U32Vec(N + 1);
    const entTok = new U32Vec(N + 1);
    const entRaw = new U32Vec(N + 1);
    const countAt = (node: number, w: number): void => {
      const e = entries.getOrSet(node * KEY_BASE + w, entNode.length);
      if (e === entNode.length) { entNode.push(node); entTok.push(w); entRaw.push(0); }
      entRaw.data[e]!++;
    };
    for (let i = 0; i < N; i++) {
      const w = tokens[i]!;
      if (!(w >= 0 && w < V)) throw new Error(`token id ${w} at ${i} is outside the vocabulary of ${V}`);
      countAt(0, w);
      let node = 0;
      for (let d = 1; d < order; d++) {
        // Before the stream's first token is the start of its first file: an eot.
        const x = i - d >= 0 ? tokens[i - d]! : eot;
        const key = node * KEY_BASE + x;
        let child = children.get(key);
        if (child < 0) {
          child = nodeParent.push(node);
          nodeTok.push(x);
          nodeDepth.push(d);
          children.getOrSet(key, child);
        }
        node = child;
        countAt(node, w);
        if (x === eot) break; // histories stop at the start of the file
      }
    }
    const nodes = nodeParent.length;
    const E = entNode.length;

    // 2. Continuation counts: every distinct n-gram x·h·w adds one to its lower order h·w.
    const cont = new Uint32Array(E);
    for (let e = 0; e < E; e++) {
      const node = entNode.data[e]!;
      if (node === 0) continue;
      cont[entries.get(nodeParent.data[node]! * KEY_BASE + entTok.data[e]!)]!++;
    }
    // The count each level uses: raw at the top order and for histories that start at an eot
    // (they have no left extensions), continuation counts otherwise.
    const used = new Uint32Array(E);
    for (let e = 0; e < E; e++) {
      const node = entNode.data[e]!;
      used[e] = nodeDepth.data[node] === order - 1 || nodeTok.data[node] === eot ? entRaw.data[e]! : cont[e]!;
    }

    // 3. Discounts per order from counts of counts.
    const coc = Array.from({ length: order }, () => [0, 0, 0, 0, 0]);
    for (let e = 0; e < E; e++) {
      const c = used[e]!;
      if (c >= 1 && c <= 4) coc[nodeDepth.data[entNode.data[e]!]!]![c]!++;
    }
    const discounts = coc.map((n) => modifiedKneserNeyDiscounts(n[1]!, n[2]!, n[3]!, n[4]!));

    // 4. Followers grouped by node (counting sort), sorted by token within a node.
    const start = new Uint32Array(nodes + 1);
    for (let e = 0; e < E; e++) if (used[e]! > 0) start[entNode.data[e]! + 1]!++;
    for (let n = 0; n < nodes; n++) start[n + 1]! += start[n]!;
    const kept = start[nodes]!;
    const packed = new Float64Array(kept); // token · 2^32 + count, so a numeric sort orders by token
    const fill = start.slice(0, nodes);
    for (let e = 0; e < E; e++) {
      const c = used[e]!;
      if (c === 0) continue;
      packed[fill[entNode.data[e]!]!++] = entTok.data[e]! * 4_294_967_296 + c;
    }
    const followTok = new Uint16Array(kept);
    const followCount = new Uint32Array(kept);
    const invTotal = new Float64Array(nodes);
    const gammaNum = new Float64Array(nodes);
    const depth = new Uint8Array(nodes);
    for (let n = 0; n < nodes; n++) {
      const a = start[n]!, b = start[n + 1]!;
      depth[n] = nodeDepth.data[n]!;
      if (b - a > 1) packed.subarray(a, b).sort();
      const [d1, d2, d3] = discounts[depth[n]!]!;
      let total = 0, g = 0;
      for (let j = a; j < b; j++) {
        const p = packed[j]!;
        const tok = Math.floor(p / 4_294_967_296);
        const c = p - tok * 4_294_967_296;
        followTok[j] = tok;
        followCount[j] = c;
        total += c;
        g += c === 1 ? d1 : c === 2 ? d2 : d3;
      }
      invTotal[n] = total > 0 ? 1 / total : 0;
      gammaNum[n] = g;
    }
    return new KneserNey({
      order, vocabSize: V, eotId: eot, discounts, children, depth, start, followTok, followCount, invTotal, gammaNum,
      stats: { tokens: N, nodes, ngrams: kept, seconds: (performance.now() - t0) / 1000 },
    });
  }

  /**
   * The history nodes for the next token after `context[0..len)`: path[0] = the empty history,
   * path[k] = the last k tokens, as far as they were seen in training (and not past an eot).
   */
  private historyPath(context: ArrayLike<number>, len: number): number {
    const path = this.path;
    path[0] = 0;
    let k = 1;
    let node = 0;
    for (let d = 1; d < this.order; d++) {
      const i = len - d;
      if (i < 0) break;
      const x = context[i]!;
      const child = this.children.get(node * KEY_BASE + x);
      if (child < 0) break;
      node = child;
      path[k++] = node;
      if (x === this.eotId) break;
    }
    return k;
  }

  /**
   * How many of the last tokens of `context[0..len)` the model saw as a history in training
   * (0 … order−1, never past an eot): the depth its prediction rests on.
   */
  matchedDepth(context: ArrayLike<number>, len = context.length): number {
    return this.historyPath(context, len) - 1;
  }

  /** Count of `token` after history `node` at its level (binary search), 0 if unseen. */
  private countOf(node: number, token: number): number {
    let lo = this.start[node]!, hi = this.start[node + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const t = this.followTok[mid]!;
      if (t === token) return this.followCount[mid]!;
      if (t < token) lo = mid + 1;
      else hi = mid;
    }
    return 0;
  }

  private discount(depth: number, c: number): number {
    const d = this.discounts[depth]!;
    return c === 1 ? d[0] : c === 2 ? d[1] : d[2];
  }

  /** p(token | context), context = the tokens before it (only the last order−1 matter). */
  prob(context: ArrayLike<number>, token: number, len = context.length): number {
    const k = this.historyPath(context, len);
    let p = 1 / this.vocabSize;
    for (let l = 0; l < k; l++) {
      const node = this.path[l]!;
      const inv = this.invTotal[node]!;
      if (inv === 0) continue;
      const c = this.countOf(node, token);
      p = ((c > 0 ? c - this.discount(this.depth[node]!, c) : 0) + this.gammaNum[node]! * p) * inv;
    }
    return p;
  }

  /** ln p(token | context). */
  logProb(context: ArrayLike<number>, token: number, len = context.length): number {
    return Math.log(this.prob(context, token, len));
  }

  /** The whole next-token distribution after `context` (sums to 1 over the vocabulary), into `out`. */
  distribution(context: ArrayLike<number>, out: Float64Array = new Float64Array(this.vocabSize), len = context.length): Float64Array {
    const V = this.vocabSize;
    out.fill(1 / V, 0, V);
    const k = this.historyPath(context, len);
    for (let l = 0; l < k; l++) {
      const node = this.path[l]!;
      const inv = this.invTotal[node]!;
      if (inv === 0) continue;
      const scale = this.gammaNum[node]! * inv;
      for (let v = 0; v < V; v++) out[v] *= scale;
      const [d1, d2, d3] = this.discounts[l]!;
      for (let j = this.start[node]!, end = this.start[node + 1]!; j < end; j++) {
        const c = this.followCount[j]!;
        out[this.followTok[j]!] += (c - (c === 1 ? d1 : c === 2 ? d2 : d3)) * inv;
      }
    }
    return out;
  }
}

/**
 * The tokens of the current file seen so far (the most recent `capacity`), as a unigram and a
 * bigram model: p_cache(w | prev) = (c(prev w) + β·c(w)/n) / (c(prev ·) + β). Code repeats its
 * own identifiers and idioms within a file far more than a corpus-wide model predicts
 * ("localness", Tu et al. 2014); this captures that at the cost of a few counters.
 */
export class TokenCache {
  private readonly ring: Int32Array;
  private head = 0;
  private n = 0;
  private readonly unigram: Uint32Array;
  /** c(prev ·): how often each token is followed by another in the cache. */
  private readonly prevCount: Uint32Array;
  /** prev → (next → count). */
  private readonly bigram = new Map<number, Map<number, number>>();
  /** Per recent push, the token it evicted (−1: none), so pop() can undo it; at most UNDO_DEPTH kept. */
  private undo: number[] = [];

  constructor(readonly vocabSize: number, readonly capacity = 4096, readonly concentration = 1) {
    this.ring = new Int32Array(capacity);
    this.unigram = new Uint32Array(vocabSize);
    this.prevCount = new Uint32Array(vocabSize);
  }

  get size(): number {
    return this.n;
  }

  /** The most recent token, or −1. */
  get last(): number {
    return this.n === 0 ? -1 : this.ring[(this.head + this.n - 1) % this.capacity]!;
  }

  reset(): void {
    this.unigram.fill(0);
    this.prevCount.fill(0);
    this.bigram.clear();
    this.n = 0;
    this.head = 0;
    this.undo = [];
  }

  private addPair(prev: number, next: number, delta: number): void {
    let m = this.bigram.get(prev);
    if (m === undefined) { m = new Map(); this.bigram.set(prev, m); }
    const c = (m.get(next) ?? 0) + delta;
    if (c === 0) m.delete(next); else m.set(next, c);
    if (m.size === 0) this.bigram.delete(prev);
    this.prevCount[prev]! += delta;
  }

  push(id: number): void {
    let evicted = -1;
    if (this.n === this.capacity) {
      // Forget the oldest token and the pair it started.
      const old = this.ring[this.head]!;
      const next = this.ring[(this.head + 1) % this.capacity]!;
      this.unigram[old]!--;
      this.addPair(old, next, -1);
      this.head = (this.head + 1) % this.capacity;
      this.n--;
      evicted = old;
    }
    const prev = this.last;
    if (prev >= 0) this.addPair(prev, id, 1);
    this.ring[(this.head + this.n) % this.capacity] = id;
    this.unigram[id]!++;
    this.n++;
    this.undo.push(evicted);
    if (this.undo.length > 2 * UNDO_DEPTH) this.undo = this.undo.slice(-UNDO_DEPTH);
  }

  /** Undoes the most recent push (also bringing back what it evicted); at most UNDO_DEPTH in a row. */
  pop(): void {
    const evicted = this.undo.pop();
    if (evicted === undefined || this.n === 0) throw new Error('TokenCache.pop: nothing to undo');
    const id = this.last;
    this.n--;
    this.unigram[id]!--;
    const prev = this.last;
    if (prev >= 0) this.addPair(prev, id, -1);
    if (evicted >= 0) {
      // Put the evicted token back in front of the oldest one, with the pair it started.
      this.head = (this.head - 1 + this.capacity) % this.capacity;
      const next = this.n > 0 ? this.ring[(this.head + 1) % this.capacity]! : -1;
      this.ring[this.head] = evicted;
      this.unigram[evicted]!++;
      this.n++;
      if (next >= 0) this.addPair(evicted, next, 1);
    }
  }

  /** p_cache(w | prev); NaN when the cache is empty. */
  prob(prev: number, w: number, beta = this.concentration): number {
    if (this.n === 0) return NaN;
    const pu = this.unigram[w]! / this.n;
    if (prev < 0) return pu;
    const cb = this.bigram.get(prev)?.get(w) ?? 0;
    return (cb + beta * pu) / (this.prevCount[prev]! + beta);
  }

  /** out[w] += weight · p_cache(w | prev) for every w (no-op when empty). */
  addDistribution(prev: number, weight: number, out: Float64Array): void {
    if (this.n === 0) return;
    const beta = this.concentration;
    const denom = prev >= 0 ? this.prevCount[prev]! + beta : 1;
    const uniScale = (weight * (prev >= 0 ? beta : 1)) / (this.n * denom);
    const uni = this.unigram;
    for (let w = 0; w < uni.length; w++) if (uni[w] !== 0) out[w] += uniScale * uni[w]!;
    if (prev >= 0) {
      const m = this.bigram.get(prev);
      if (m !== undefined) for (const [w, c] of m) out[w] += (weight * c) / denom;
    }
  }
}

/** How the cache joins the n-gram model: p = (1 − weight)·p_kn + weight·p_cache. */
export interface CacheParams {
  weight: number;
  /** β of the cache's bigram → unigram back-off. */
  concentration: number;
  /** Most recent tokens of the file kept. */
  capacity: number;
}

/** Used when no tuning data is at hand; tuneCache picks better values for a corpus. */
export const DEFAULT_CACHE: CacheParams = { weight: 0.1, concentration: 1, capacity: 4096 };

/**
 * The n-gram model with its file cache over one document: the history is the file so far (push
 * eot, then the file's tokens, at a file start), the cache holds its tokens since the last eot.
 * The served model (servedModel.ts) keeps it in step with the document and reads distribution().
 */
export class NgramSession {
  private history: number[] = [];
  readonly cache: TokenCache;
  private readonly probs: Float64Array;

  constructor(readonly kn: KneserNey, readonly params: CacheParams = DEFAULT_CACHE) {
    this.cache = new TokenCache(kn.vocabSize, params.capacity, params.concentration);
    this.probs = new Float64Array(kn.vocabSize);
  }

  get length(): number {
    return this.history.length;
  }

  reset(): void {
    this.history = [];
    this.cache.reset();
  }

  /** Adds a token to the history (and the cache; an eot starts a new file with an empty cache). */
  push(id: number): void {
    this.history.push(id);
    if (id === this.kn.eotId) this.cache.reset();
    else this.cache.push(id);
    // Only the last order−1 tokens matter to the n-gram part: keep the history short (but long
    // enough for pop() to undo UNDO_DEPTH pushes).
    if (this.history.length > 4 * UNDO_DEPTH) this.history = this.history.slice(-2 * UNDO_DEPTH);
  }

  /** Undoes the last push of a token other than eot (an eot cleared the cache for good). */
  pop(): void {
    const id = this.history.pop();
    if (id === undefined || id === this.kn.eotId) throw new Error('NgramSession.pop: nothing to undo');
    this.cache.pop();
  }

  /**
   * The mixture bucket of the next prediction (mixture.ts): the n-gram's matched depth and its
   * confidence, read from `dist` — this session's distribution() now, passed in by callers that
   * already computed it.
   */
  bucket(dist: ArrayLike<number> = this.distribution()): number {
    let top = 0;
    for (let v = 0; v < dist.length; v++) if (dist[v]! > top) top = dist[v]!;
    return mixtureBucket(this.kn.matchedDepth(this.history), top);
  }

  /** p(token | history) with the cache mixed in. */
  prob(token: number): number {
    const pkn = this.kn.prob(this.history, token);
    const w = this.params.weight;
    if (this.cache.size === 0 || w === 0) return pkn;
    return (1 - w) * pkn + w * this.cache.prob(this.cache.last, token);
  }

  logProb(token: number): number {
    return Math.log(this.prob(token));
  }

  /** The next-token distribution (probabilities; the returned array is reused). */
  distribution(): Float64Array {
    const out = this.kn.distribution(this.history, this.probs);
    const w = this.params.weight;
    if (this.cache.size > 0 && w > 0) {
      for (let v = 0; v < out.length; v++) out[v] *= 1 - w;
      this.cache.addDistribution(this.cache.last, w, out);
    }
    return out;
  }

}

/**
 * At most `max` tokens of whole files (eot-terminated) taken evenly across `tokens`; all of them
 * when they fit (the n-gram model's memory bound: SERVING.maxNgramTokens).
 */
export function capTokens(tokens: Uint16Array, eot: number, max: number): Uint16Array {
  if (tokens.length <= max) return tokens;
  const ends: number[] = [];
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === eot) ends.push(i + 1);
  if (ends[ends.length - 1] !== tokens.length) ends.push(tokens.length);
  const keepShare = max / tokens.length;
  const out = new Uint16Array(max);
  let n = 0, start = 0, credit = 0;
  for (const end of ends) {
    credit += (end - start) * keepShare;
    if (credit >= end - start && n + (end - start) <= max) {
      out.set(tokens.subarray(start, end), n);
      n += end - start;
      credit -= end - start;
    }
    start = end;
  }
  return out.subarray(0, n);
}

/**
 * Picks the cache weight and concentration that minimise cross-entropy on `heldOut` (files
 * joined by eot, NOT in the model's training data — on training data the n-gram part looks
 * better than it is and the cache would be under-weighted). Returns the best and its loss.
 */
export function tuneCache(
  kn: KneserNey,
  heldOut: ArrayLike<number>,
  grid: { weights?: number[]; concentrations?: number[]; capacity?: number } = {},
): { params: CacheParams; nats: number; tokens: number; natsWithoutCache: number } {
  const weights = grid.weights ?? [0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5];
  const betas = grid.concentrations ?? [0.25, 1, 4, 16];
  const capacity = grid.capacity ?? DEFAULT_CACHE.capacity;
  const caches = betas.map((b) => new TokenCache(kn.vocabSize, capacity, b));
  const loss = new Float64Array(weights.length * betas.length);
  const history: number[] = [kn.eotId];
  let tokens = 0;
  for (let i = 0; i < heldOut.length; i++) {
    const w = heldOut[i]!;
    const pkn = kn.prob(history, w);
    for (let b = 0; b < betas.length; b++) {
      const cache = caches[b]!;
      const pc = cache.size > 0 ? cache.prob(cache.last, w) : pkn;
      for (let k = 0; k < weights.length; k++) loss[k * betas.length + b] -= Math.log((1 - weights[k]!) * pkn + weights[k]! * pc);
    }
    tokens++;
    history.push(w);
    if (history.length > 64) history.splice(0, history.length - kn.order);
    for (const cache of caches) {
      if (w === kn.eotId) cache.reset();
      else cache.push(w);
    }
  }
  let best = 0;
  for (let j = 1; j < loss.length; j++) if (loss[j]! < loss[best]!) best = j;
  const k = Math.floor(best / betas.length), b = best % betas.length;
  const zero = weights.indexOf(0);
  return {
    params: { weight: weights[k]!, concentration: betas[b]!, capacity },
    nats: loss[best]!, tokens,
    natsWithoutCache: zero >= 0 ? loss[zero * betas.length]! : NaN,
  };
}
