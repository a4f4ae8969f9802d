// Completion and language-model metrics, defined to match published evaluations so our numbers
// can be read next to theirs.
//
// Next-line completion follows CodeXGLUE's line-level code completion evaluator
// (microsoft/CodeXGLUE, Code-Code/CodeCompletion-line/evaluator/evaluator.py; Lu et al. 2021):
//   - exact match: `pred.split() == gt.split()` — the two strings are equal as sequences of
//     whitespace-separated pieces (so indentation and runs of spaces do not count, but `a+b`
//     and `a + b` differ);
//   - edit similarity: `fuzz.ratio(pred, gt)` of fuzzywuzzy, which with python-Levenshtein is
//     Levenshtein.ratio = (|a| + |b| − d) / (|a| + |b|), where d is the Levenshtein distance
//     with substitutions costing 2 — i.e. the insert/delete ("InDel") distance,
//     d = |a| + |b| − 2·LCS(a, b). So ES = 2·LCS(a, b) / (|a| + |b|).
// Differences from fuzzywuzzy, on purpose: we return a fraction in [0, 1] (×100 for its scale)
// and do not round each sample to an integer (its rounding moves a mean by < 0.5 points);
// both strings are trimmed first (the evaluator strips the prediction; our ground truth is the
// rest of a line cut at a random position, which may start with a space). Two empty strings
// are identical (1); one empty and one not share nothing (0) — as fuzzywuzzy's guards do.
// Lengths are in Unicode code points, as Python's str.

/** CodeXGLUE exact match: equal as sequences of whitespace-separated pieces. */
export function exactMatch(prediction: string, truth: string): boolean {
  const a = splitWhitespace(prediction);
  const b = splitWhitespace(truth);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Python's str.split() with no arguments: pieces between runs of whitespace, none empty. */
export function splitWhitespace(s: string): string[] {
  return s.split(/\s+/).filter((p) => p.length > 0);
}

/** Length of the longest common subsequence of two code-point arrays (O(|a|·|b|) time, O(|b|) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = ai === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** Insert/delete edit distance (Levenshtein with substitution cost 2), in code points. */
export function indelDistance(a: string, b: string): number {
  const ca = Array.from(a);
  const cb = Array.from(b);
  return ca.length + cb.length - 2 * lcsLength(ca, cb);
}

/** CodeXGLUE edit similarity in [0, 1]: 1 − indel / (|a| + |b|) of the trimmed strings (see above). */
export function editSimilarity(prediction: string, truth: string): number {
  const a = Array.from(prediction.trim());
  const b = Array.from(truth.trim());
  const total = a.length + b.length;
  if (total === 0) return 1;
  return (2 * lcsLength(a, b)) / total;
}

/**
 * Bits per byte of a text from the model's total cross-entropy over its tokens, in nats:
 * nats / (ln 2 · bytes). Unlike loss per token it does not depend on the tokenizer, so models
 * with different vocabularies (and the n-gram baseline) compare on the same scale.
 */
export function bitsPerByte(totalNats: number, bytes: number): number {
  if (!(bytes > 0)) return NaN;
  return totalNats / (Math.LN2 * bytes);
}

/** Running means of next-line scores, overall and per group (e.g. per file extension). */
export class LineScores {
  n = 0;
  exact = 0;
  similarity = 0;
  readonly groups = new Map<string, { n: number; exact: number; similarity: number }>();

  add(prediction: string, truth: string, group?: string): { exact: boolean; similarity: number } {
    const em = exactMatch(prediction, truth);
    const es = editSimilarity(prediction, truth);
    this.n++;
    this.exact += em ? 1 : 0;
    this.similarity += es;
    if (group !== undefined) {
      const g = this.groups.get(group) ?? { n: 0, exact: 0, similarity: 0 };
      g.n++;
      g.exact += em ? 1 : 0;
      g.similarity += es;
      this.groups.set(group, g);
    }
    return { exact: em, similarity: es };
  }

  /** Exact-match rate and mean edit similarity, both in [0, 1]. */
  summary(): { exact_match: number; edit_similarity: number; n: number } {
    return { exact_match: this.n > 0 ? this.exact / this.n : NaN, edit_similarity: this.n > 0 ? this.similarity / this.n : NaN, n: this.n };
  }
}
